"""/v1/tasks: the hub's work queue across journeys.

    GET  /v1/tasks?role=&status=&overdue=&patient_id=&journey_id=   soonest due first,
                                                        paged (page_size, page_token)
    GET  /v1/tasks/{id}                                 with its trail (and the patient's
                                                        words, for a key with patients:read)
    POST /v1/tasks/{id}/assign    {owner}
    POST /v1/tasks/{id}/reassign  {owner?, role?}
    POST /v1/tasks/{id}/complete  {outcome}  → the journey waiting on it goes on, once

A retried request changes nothing the second time; acting on a closed task is 409.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import require
from api.deps import Patients
from api.errors import ApiProblem
from api.openapi import problems
from contract.ids import JOURNEY_ID, PAGE_TOKEN, PATIENT_ID
from contract.tasks import CODE, AssignIn, CompleteIn, ReassignIn, TaskDetail, TaskOut, TaskPage
from services.tasks import InvalidPageToken, TaskNotFound, TaskService
from store.api_keys import ApiKey
from store.tasks import TaskAction, TaskClosed

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
Reader = Annotated[ApiKey, require("tasks:read")]
Worker = Annotated[ApiKey, require("tasks:write")]
# Task ids are 32-bit integers in the store (PostgreSQL's integer): a larger one is a 422.
TaskId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The task's id (GET /v1/tasks).")]


def task_service(request: Request) -> TaskService:
    state = request.app.state
    return TaskService(
        state.store, getattr(state, "journeys", None), getattr(state, "page_token_key", None)
    )


Tasks = Annotated[TaskService, Depends(task_service)]


@router.get("", summary="The task queue", responses=problems(404, 422))
async def list_tasks(
    tasks: Tasks,
    patients: Patients,
    key: Reader,
    role: Annotated[str | None, Query(pattern=CODE, description="Owner role.")] = None,
    status: Annotated[
        Literal["requested", "in-progress", "completed", "cancelled"] | None, Query()
    ] = None,
    overdue: Annotated[bool | None, Query(description="Open and past due (or not).")] = None,
    patient_id: Annotated[str | None, Query(pattern=PATIENT_ID)] = None,
    journey_id: Annotated[str | None, Query(pattern=JOURNEY_ID)] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(pattern=PAGE_TOKEN)] = None,
) -> TaskPage:
    patient_ref = None
    if patient_id is not None:
        patient_ref = await patients.resolve(patient_id)
        if patient_ref is None:
            raise ApiProblem(404, "patient-not-found", "No patient with that id")
    try:
        return await tasks.find(
            role=role, status=status, overdue=overdue, patient_ref=patient_ref,
            journey_ref=journey_id, page_size=page_size, page_token=page_token,
        )  # fmt: skip
    except InvalidPageToken:
        raise ApiProblem(
            422, "invalid-request", "The request is not valid", "invalid page_token",
            errors=[{"field": "query.page_token", "message": "not a token from this list",
                     "type": "invalid_page_token"}],
        ) from None  # fmt: skip


@router.get("/{task_id}", summary="One task and its trail", responses=problems(404, 422))
async def get_task(task_id: TaskId, tasks: Tasks, key: Reader) -> TaskDetail:
    try:
        return await tasks.get(task_id, with_note=key.allows("patients:read"))
    except TaskNotFound:
        raise ApiProblem(404, "task-not-found", "No task with that id") from None


async def _act(tasks: TaskService, task_id: int, action: TaskAction, key: ApiKey) -> TaskOut:
    try:
        return await tasks.act(task_id, action, key.key_id)
    except TaskNotFound:
        raise ApiProblem(404, "task-not-found", "No task with that id") from None
    except TaskClosed as closed:
        raise ApiProblem(
            409, "task-closed", "The task is closed", f"it is {closed.status}"
        ) from None


@router.post("/{task_id}/assign", summary="Take a task", responses=problems(404, 409, 422))
async def assign(task_id: TaskId, body: AssignIn, tasks: Tasks, key: Worker) -> TaskOut:
    return await _act(tasks, task_id, TaskAction("assign", owner=body.owner), key)


@router.post("/{task_id}/reassign", summary="Give a task to someone else or another role",
             responses=problems(404, 409, 422))  # fmt: skip
async def reassign(task_id: TaskId, body: ReassignIn, tasks: Tasks, key: Worker) -> TaskOut:
    return await _act(tasks, task_id, TaskAction("reassign", owner=body.owner, role=body.role), key)


@router.post("/{task_id}/complete", summary="Complete a task; its journey goes on",
             responses=problems(404, 409, 422))  # fmt: skip
async def complete(task_id: TaskId, body: CompleteIn, tasks: Tasks, key: Worker) -> TaskOut:
    return await _act(tasks, task_id, TaskAction("complete", outcome=body.outcome), key)
