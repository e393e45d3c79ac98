"""The CRM client and the task push against the running sandbox CRM over loopback: create,
fetch, update, find by our reference; a retried create is made at most once although the
CRM never deduplicates; an outage is retried, then written off without holding the
journey, and the next change pushes again. Nothing of the patient reaches the CRM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.crm import CreateInFlight, CrmPush
from activities.tasks import TaskActivities
from adapters.crm import CrmClient, TaskFields, properties
from adapters.errors import PartnerUnavailable
from domain.actions import TaskChange
from settings import Settings, UnsafeSettings
from store import Store
from tests.sandbox.harness import get_json

T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
PATIENT = "pt-crm7f3a9c"
LINK = "https://pitwall.example"


async def behave(sandbox_url: str, **fields: Any) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(f"{sandbox_url}/crm/_sandbox/behaviour", json=fields)).raise_for_status()


async def crm_tasks(sandbox_url: str, reference: str) -> list[dict[str, Any]]:
    rows = await get_json(sandbox_url, "/crm/_sandbox/tasks", pitwall_task_id=reference)
    return list(rows)


@pytest.fixture(autouse=True)
async def empty_crm(sandbox_url: str) -> AsyncIterator[None]:
    """Each test's store numbers its tasks from 1: each starts with an empty CRM."""
    async with httpx.AsyncClient() as http:
        (await http.post(f"{sandbox_url}/crm/_sandbox/reset")).raise_for_status()
    yield
    await behave(sandbox_url)  # and leaves it answering at once


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'crm.db'}")
    yield store
    store.engine.dispose()


def change(kind: str, *, role: str = "nurse_educator", **extra: Any) -> TaskChange:
    fields: dict[str, Any] = {
        "journey_ref": f"journey/demo/{PATIENT}", "patient_ref": PATIENT, "program": "demo",
        "step_id": "schedule_training", "idempotency_key": f"wf/schedule_training/1/task/{kind}",
        "change": kind, "task_id": "schedule_training-1",
        "title": "Schedule injection training with the patient", "role": role,
        "opened_at": T0, "due_at": T0 + timedelta(days=2), **extra,
    }  # fmt: skip
    return TaskChange(**fields)


def opened_task(activities: TaskActivities) -> int:
    task_id = activities._record(change("opened"))
    assert task_id is not None
    return task_id


def fields(reference: str, **extra: Any) -> TaskFields:
    given: dict[str, Any] = {
        "reference": reference, "subject": "Schedule injection training with the patient",
        "role": "nurse_educator", "priority": "routine", "escalated": False,
        "due_at": T0 + timedelta(days=2), "status": "requested", "outcome": None,
        "link": f"{LINK}/v1/tasks/{reference}", **extra,
    }  # fmt: skip
    return TaskFields(**given)


async def test_a_task_is_created_fetched_updated_and_found_by_our_reference(
    sandbox_url: str,
) -> None:
    reference = "7001"
    async with CrmClient(sandbox_url, "token") as crm:
        created = await crm.create(properties(fields(reference)))
        assert (created.status, created.reference, created.outcome) == (
            "NOT_STARTED", reference, None,
        )  # fmt: skip
        later = T0 + timedelta(days=4)
        updated = await crm.update(
            created.id,
            properties(fields(reference, role="case_manager", escalated=True, due_at=later)),
        )
        assert updated is not None
        fetched = await crm.get(created.id)
        assert fetched is not None
        assert fetched.properties["hs_task_priority"] == "HIGH"
        assert fetched.properties["pitwall_role"] == "case_manager"
        assert fetched.properties["hs_timestamp"] == "2026-12-08T15:00:00.000Z"
        assert [t.id for t in await crm.find_by_reference(reference)] == [created.id]
        assert await crm.get("99999999999") is None
        assert await crm.update("99999999999", {"hs_task_status": "COMPLETED"}) is None
        assert await crm.get("../../etc") is None  # only the CRM's numeric ids go in a path


async def test_a_create_whose_answer_was_lost_is_made_once(sandbox_url: str, store: Store) -> None:
    """The CRM creates the task but its answer never arrives (the client times out): the
    retry finds the task by our reference instead of making a second."""
    await behave(sandbox_url, response_delay_seconds=1.0)
    crm = CrmClient(sandbox_url, "token", timeout=0.3)
    push = CrmPush(crm, store.tasks, LINK)
    task_id = opened_task(TaskActivities(store.tasks, push))
    with pytest.raises(PartnerUnavailable):
        await push.push(task_id)
    await behave(sandbox_url)
    crm_id = await push.push(task_id)
    [only] = await crm_tasks(sandbox_url, str(task_id))
    assert only["id"] == crm_id
    row = store.tasks.get(task_id)
    assert row is not None and (row.crm_task_id, row.crm_create_started_at) == (crm_id, None)
    assert await push.push(task_id) == crm_id  # and again: an update, not a create
    assert len(await crm_tasks(sandbox_url, str(task_id))) == 1
    await crm.aclose()


async def test_a_create_the_search_cannot_see_yet_is_waited_for_not_repeated(
    sandbox_url: str, store: Store
) -> None:
    """HubSpot's search lags its writes: right after a lost answer the search finds
    nothing, and the retry waits (a retryable error) until the create can be seen."""
    await behave(sandbox_url, response_delay_seconds=1.0, search_lag_seconds=0.8)
    crm = CrmClient(sandbox_url, "token", timeout=0.3)
    push = CrmPush(crm, store.tasks, LINK, in_flight=timedelta(seconds=30))
    task_id = opened_task(TaskActivities(store.tasks, push))
    with pytest.raises(PartnerUnavailable):
        await push.push(task_id)
    with pytest.raises(CreateInFlight):
        await push.push(task_id)  # nothing found yet, and the create may have landed
    [made] = await crm_tasks(sandbox_url, str(task_id))  # it did (search cannot see it)
    with pytest.raises(ApplicationError) as waiting:
        await push.sync(task_id, attempt=9)  # however late the attempt: not written off
    assert waiting.value.type == "crm.create_in_flight" and not waiting.value.non_retryable
    for _ in range(100):  # until the CRM's index has it
        if await crm.find_by_reference(str(task_id)):
            break
        await asyncio.sleep(0.05)
    assert await push.push(task_id) == made["id"]
    assert len(await crm_tasks(sandbox_url, str(task_id))) == 1
    await crm.aclose()


async def test_an_outage_is_retried_then_written_off_and_the_next_change_pushes(
    sandbox_url: str, store: Store
) -> None:
    await behave(sandbox_url, outage_seconds=300, outage_status=503)
    crm = CrmClient(sandbox_url, "token")
    activities = TaskActivities(store.tasks, CrmPush(crm, store.tasks, LINK))
    task_id = opened_task(activities)
    assert activities.crm is not None
    with pytest.raises(ApplicationError) as retried:
        await activities.crm.sync(task_id, attempt=1)  # Temporal retries this one
    assert retried.value.type == "partner.unavailable" and not retried.value.non_retryable
    await activities.crm.sync(task_id, attempt=3)  # the last: the journey goes on
    assert [e.action for e in store.tasks.trail(task_id)] == ["opened", "crm_push_failed"]
    assert await crm_tasks(sandbox_url, str(task_id)) == []

    await behave(sandbox_url)  # the CRM is back; the task escalates
    later = T0 + timedelta(days=4)
    assert activities._record(change("escalated", role="case_manager", due_at=later)) == task_id
    await activities.crm.sync(task_id, attempt=1)
    [pushed] = await crm_tasks(sandbox_url, str(task_id))
    props = pushed["properties"]
    assert (props["pitwall_role"], props["hs_task_priority"], props["hs_task_status"]) == (
        "case_manager", "HIGH", "NOT_STARTED",
    )  # fmt: skip
    assert props["hs_timestamp"] == "2026-12-08T15:00:00.000Z"
    await crm.aclose()


async def test_an_escalation_moves_the_crm_task_without_undoing_a_users_work(
    sandbox_url: str, store: Store
) -> None:
    crm = CrmClient(sandbox_url, "token")
    activities = TaskActivities(store.tasks, CrmPush(crm, store.tasks, LINK))
    assert activities.crm is not None
    task_id = opened_task(activities)
    crm_id = await activities.crm.push(task_id)
    assert crm_id is not None
    # A hub user starts the task in the CRM and begins filling in the outcome.
    await crm.update(crm_id, {"hs_task_status": "IN_PROGRESS", "pitwall_outcome": "sched"})
    activities._record(change("escalated", role="case_manager", due_at=T0 + timedelta(days=3)))
    await activities.crm.sync(task_id, attempt=1)
    [moved] = await crm_tasks(sandbox_url, str(task_id))
    props = moved["properties"]
    assert (props["pitwall_role"], props["hs_task_priority"]) == ("case_manager", "HIGH")
    assert (props["hs_task_status"], props["pitwall_outcome"]) == ("IN_PROGRESS", "sched")
    await crm.aclose()


async def test_a_rejected_push_is_written_off_at_once(sandbox_url: str, store: Store) -> None:
    crm = CrmClient(sandbox_url, "")  # no token: 401
    activities = TaskActivities(store.tasks, CrmPush(crm, store.tasks, LINK))
    task_id = opened_task(activities)
    assert activities.crm is not None
    await activities.crm.sync(task_id, attempt=1)
    assert [e.action for e in store.tasks.trail(task_id)] == ["opened", "crm_push_failed"]
    row = store.tasks.get(task_id)
    assert row is not None and row.crm_create_started_at is None  # nothing was made
    await crm.aclose()


async def test_the_journey_closing_its_task_closes_the_crm_task_and_makes_none_if_absent(
    sandbox_url: str, store: Store
) -> None:
    crm = CrmClient(sandbox_url, "token")
    activities = TaskActivities(store.tasks, CrmPush(crm, store.tasks, LINK))
    assert activities.crm is not None
    task_id = opened_task(activities)
    crm_id = await activities.crm.push(task_id)
    assert activities._record(change("abandoned")) == task_id
    assert await activities.crm.push(task_id) == crm_id
    [closed] = await crm_tasks(sandbox_url, str(task_id))
    props = closed["properties"]
    assert (props["hs_task_status"], props["pitwall_outcome"]) == ("COMPLETED", "gave_up")

    # A task closed before it ever reached the CRM leaves no stale work there.
    other = activities._record(change("opened", task_id="dose_followup-1"))
    assert other is not None
    activities._record(change("abandoned", task_id="dose_followup-1"))
    assert await activities.crm.push(other) is None
    assert await crm_tasks(sandbox_url, str(other)) == []
    await crm.aclose()


async def test_nothing_of_the_patient_reaches_the_crm(sandbox_url: str, store: Store) -> None:
    crm = CrmClient(sandbox_url, "token")
    activities = TaskActivities(store.tasks, CrmPush(crm, store.tasks, LINK))
    assert activities.crm is not None
    task_id = opened_task(activities)
    await activities.crm.push(task_id)
    [pushed] = await crm_tasks(sandbox_url, str(task_id))
    text = json.dumps(pushed)
    assert PATIENT not in text and "journey" not in text
    props = pushed["properties"]
    assert props["hs_task_subject"] == "Schedule injection training with the patient"
    assert props["hs_task_body"] == (
        f"Pitwall task {task_id} for the nurse_educator queue: {LINK}/v1/tasks/{task_id}"
    )
    await crm.aclose()


def test_the_crm_is_on_in_development_off_in_production_and_refuses_its_default_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    monkeypatch.delenv("PITWALL_PARTNER_CRM_ENABLED", raising=False)
    monkeypatch.delenv("PITWALL_PARTNER_CRM_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("PITWALL_ENV", "development")
    assert Settings().crm_enabled()
    monkeypatch.setenv("PITWALL_ENV", "production")
    production = Settings()
    assert not production.crm_enabled()
    assert "PITWALL_PARTNER_CRM_ACCESS_TOKEN" not in production.unsafe_secrets()
    monkeypatch.setenv("PITWALL_PARTNER_CRM_ENABLED", "true")
    with pytest.raises(UnsafeSettings, match="PITWALL_PARTNER_CRM_ACCESS_TOKEN"):
        Settings().require_safe()
    monkeypatch.setenv("PITWALL_PARTNER_CRM_ACCESS_TOKEN", "pat-na1-" + "x" * 30)
    assert "PITWALL_PARTNER_CRM_ACCESS_TOKEN" not in Settings().unsafe_secrets()
