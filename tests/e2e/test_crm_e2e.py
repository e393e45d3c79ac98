"""The external CRM work queue, end to end (the CRM is on in development: the sandbox's):
a journey's task is pushed to the CRM, a hub user completes it there, the signed webhook
(sent twice) completes ours and the journey goes on exactly once. Escalations move the
CRM task up; a task the journey gives up is closed in the CRM, and the webhook that
change echoes back changes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters import crm as hubspot
from tests.e2e.conftest import PROGRAM, SECRET, Stack
from tests.e2e.test_tasks_e2e import queued


async def eventually(probe: Any, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := await probe():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        yield http
        await http.put("/crm/_sandbox/behaviour", json={})


async def crm_task(sandbox: httpx.AsyncClient, task_id: int, **props: str) -> dict[str, Any]:
    """Our task's one CRM task, once its properties say `props`."""

    async def there() -> dict[str, Any] | None:
        rows = await sandbox.get("/crm/_sandbox/tasks", params={"pitwall_task_id": task_id})
        found = rows.json()
        assert len(found) <= 1, "one CRM task per task of ours"
        if found and all(found[0]["properties"].get(k) == v for k, v in props.items()):
            return dict(found[0])
        return None

    return dict(await eventually(there))


async def webhooks_answered(sandbox: httpx.AsyncClient, crm: dict[str, Any], copies: int) -> None:
    ids = {str(i) for i in crm["webhook_event_ids"]}

    async def answered() -> bool:
        rows = (await sandbox.get("/_sandbox/callbacks", params={"service": "crm"})).json()
        mine = [r for r in rows if r["event_id"] in ids]
        return len(mine) == copies and all(r["last_status"] == 202 for r in mine)

    await eventually(answered)


async def start(stack: Stack, api: httpx.AsyncClient, **extra: Any) -> str:
    patient = stack.new_patient({})
    started = await api.post("/v1/journeys", json={
        "template": "nurse_onboarding", "patient_id": stack.external[patient],
        "program": PROGRAM, **extra,
    })  # fmt: skip
    assert started.status_code == 201, started.text
    return str(started.json()["journey_id"])


async def test_a_task_completed_in_the_crm_moves_its_journey_on_once(
    stack: Stack, sandbox: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        journey = await start(stack, api, time_scale=1.0)
        task = await queued(api, journey, "nurse_educator")
        pushed = await crm_task(sandbox, task["id"], hs_task_status="NOT_STARTED")
        props = pushed["properties"]
        assert props["hs_task_subject"] == task["title"]
        assert props["pitwall_role"] == "nurse_educator"
        assert task["patient_ref"] not in json.dumps(pushed)  # nothing of the patient

        await sandbox.put("/crm/_sandbox/behaviour", json={"duplicate_webhooks": True})
        done = await sandbox.post(f"/crm/_sandbox/tasks/{pushed['id']}/complete",
                                  json={"outcome": "scheduled", "owner": "7001"})  # fmt: skip
        assert done.json()["changed"] is True

        state = await stack.reaches(journey, "first_dose")
        assert [(s.step_id, s.outcome) for s in state.completed_steps] == [
            ("schedule_training", "done")
        ]
        assert state.events["schedule_training"]["outcome"] == "scheduled"
        completed = await crm_task(sandbox, task["id"], hs_task_status="COMPLETED")
        await webhooks_answered(sandbox, completed, copies=2)  # both copies taken, 202

        detail = (await api.get(f"/v1/tasks/{task['id']}")).json()
        assert (detail["status"], detail["outcome"]) == ("completed", "scheduled")
        assert [line.split(" ", 1)[1] for line in detail["trail"]] == [
            "opened", "complete by crm:7001",
        ]  # fmt: skip
        state = await stack.journeys.state(journey)
        assert [s.step_id for s in state.completed_steps] == ["schedule_training"]
        await stack.journeys.cancel(journey, "test_done")


async def test_escalation_moves_the_crm_task_and_a_given_up_task_closes_it_with_no_echo(
    stack: Stack, sandbox: httpx.AsyncClient
) -> None:
    fast = {"first_dose_timeout": "1d", "followup_sla": "1d", "give_up_after": "2d"}
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        # A journey-day a second: training is due in 2 s, then escalates to case_manager.
        journey = await start(stack, api, time_scale=86400.0, params=fast)
        training = await queued(api, journey, "nurse_educator")
        escalated = await crm_task(
            sandbox, training["id"], pitwall_role="case_manager", hs_task_priority="HIGH"
        )
        assert escalated["properties"]["hs_task_status"] == "NOT_STARTED"
        await sandbox.post(f"/crm/_sandbox/tasks/{escalated['id']}/complete",
                           json={"outcome": "scheduled"})  # fmt: skip

        # No first dose in time: the follow-up task escalates, then is given up.
        finished = await stack.finished(journey, within=60)
        assert finished.status == "abandoned"
        cancelled = (await api.get("/v1/tasks", params={"status": "cancelled"})).json()["items"]
        [followup] = [t for t in cancelled if t["journey_id"] == journey]
        closed = await crm_task(sandbox, followup["id"], hs_task_status="COMPLETED")
        assert closed["properties"]["pitwall_outcome"] == "gave_up"
        await webhooks_answered(sandbox, closed, copies=1)  # the echo of our PATCH: taken

        # That echo (or its replay) changes nothing: our task was closed by its journey.
        body = json.dumps([{
            "eventId": closed["webhook_event_ids"][0], "subscriptionType": "object.propertyChange",
            "objectId": int(closed["id"]), "objectTypeId": "0-27", "attemptNumber": 1,
            "propertyName": "hs_task_status", "propertyValue": "COMPLETED", "changeSource": "API",
        }]).encode()  # fmt: skip
        ts = str(int(time.time() * 1000))
        url = f"{stack.receiver_url}/v1/webhooks/crm"
        replay = await api.post(url, content=body, headers={
            **stack.partner_headers, hubspot.TIMESTAMP_HEADER: ts,
            hubspot.SIGNATURE_HEADER: hubspot.signature(SECRET, "POST", url, body, ts),
        })  # fmt: skip
        assert replay.json()["outcomes"] == ["already_closed"], replay.text
        detail = (await api.get(f"/v1/tasks/{followup['id']}")).json()
        assert (detail["status"], detail["outcome"]) == ("cancelled", "gave_up")
        assert [line.split(" ", 1)[1] for line in detail["trail"]] == [
            "opened", "escalated:case_manager", "cancel by journey",
        ]  # fmt: skip
        first = (await api.get(f"/v1/tasks/{training['id']}")).json()
        assert [line.split(" ", 1)[1] for line in first["trail"]] == [
            "opened", "escalated:case_manager", "complete by crm:7001",
        ]  # fmt: skip
        assert [(s.step_id, s.outcome) for s in finished.completed_steps][:1] == [
            ("schedule_training", "done_after_escalation")
        ]
