"""The hub works a journey's task from the queue (HTTP), without the Temporal UI: the
task is in the store as soon as the journey opens it, and completing it (even twice,
as a retried request does) moves the journey on exactly once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.e2e.conftest import PROGRAM, Stack


async def queued(api: httpx.AsyncClient, journey: str, role: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = (await api.get("/v1/tasks", params={"role": role, "status": "requested"})).json()
        mine = [t for t in page["items"] if t["journey_id"] == journey]
        if mine:
            return dict(mine[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {role} task for {journey}")


async def test_a_task_completed_through_the_api_reaches_its_journey_once(stack: Stack) -> None:
    patient = stack.new_patient({})
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        started = await api.post("/v1/journeys", json={
            "template": "nurse_onboarding", "patient_id": stack.external[patient],
            "program": PROGRAM, "time_scale": 1.0,
        })  # fmt: skip
        assert started.status_code == 201, started.text
        journey = str(started.json()["journey_id"])

        task = await queued(api, journey, "nurse_educator")
        assert (task["kind"], task["step_id"], task["overdue"]) == (
            "journey_task", "schedule_training", False,
        )  # fmt: skip
        assigned = await api.post(f"/v1/tasks/{task['id']}/assign", json={"owner": "nurse-7"})
        assert (assigned.json()["status"], assigned.json()["owner"]) == ("in-progress", "nurse-7")
        for _ in range(2):  # the hub's client retries: the second changes nothing
            done = await api.post(f"/v1/tasks/{task['id']}/complete",
                                  json={"outcome": "scheduled"})  # fmt: skip
            assert done.status_code == 200, done.text
            assert (done.json()["status"], done.json()["outcome"]) == ("completed", "scheduled")
        other = await api.post(f"/v1/tasks/{task['id']}/complete", json={"outcome": "declined"})
        assert other.status_code == 409 and other.json()["type"].endswith("task-closed")

        state = await stack.reaches(journey, "first_dose")
        steps = [(s.step_id, s.outcome) for s in state.completed_steps]
        assert steps == [("schedule_training", "done")]
        assert state.events["schedule_training"]["outcome"] == "scheduled"

        detail = (await api.get(f"/v1/tasks/{task['id']}")).json()
        # The trail: each action once, with its time (the retry and the journey's own
        # "completed" added nothing).
        assert [line.split(" ")[1] for line in detail["trail"]] == ["opened", "assign", "complete"]
        await stack.journeys.cancel(journey, "test_done")
