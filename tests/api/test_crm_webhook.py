"""POST /v1/webhooks/crm: HubSpot-signed, thin events; a task completed in the CRM completes
ours through TaskService and reaches its journey once. Forged, stale, duplicated, late and
out-of-order webhooks change nothing. The CRM is the real sandbox over loopback; the
journey side is a recording gateway (the e2e test runs the real one)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from temporalio.service import RPCError, RPCStatusCode

from adapters import crm as hubspot
from adapters.crm import CrmClient, TaskFields, properties
from api.webhooks import Webhooks
from domain.partners import PartnerEvent
from gateway.journeys import JourneyGateway
from services.callbacks import CallbackService
from services.crm import CrmCompletions
from services.tasks import TaskService
from store import Store
from store.tasks import JourneyTaskOpened, TaskAction
from tests.sandbox import harness

sandbox_url = harness.sandbox_url  # the sandbox (and its callback sink) for this module
sink = harness.sink

CRM_SECRET = "test-crm-client-secret"
RECEIVER = "http://receiver.test"
T0 = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


@dataclass
class Journeys:
    """Stands in for JourneyGateway.signal_event: what each journey was told."""

    signals: list[tuple[str, PartnerEvent]] = field(default_factory=list)
    down: bool = False

    async def signal_event(self, journey_id: str, event: PartnerEvent) -> None:
        if self.down:
            raise RPCError("temporal unavailable", RPCStatusCode.UNAVAILABLE, b"")
        self.signals.append((journey_id, event))


@dataclass
class Receiver:
    http: httpx.AsyncClient
    store: Store
    journeys: Journeys
    crm: CrmClient
    sandbox: str
    key: str
    n: int = 0

    def open_task(self, step: str = "schedule_training") -> int:
        task, _ = self.store.tasks.open_for_journey(
            JourneyTaskOpened(
                journey_ref="journey/demo/pt-crmhook", patient_ref="pt-crmhook", step_id=step,
                journey_task_id=f"{step}-1", title="Schedule injection training",
                role="nurse_educator", priority="routine", opened_at=T0,
                due_at=T0 + timedelta(days=2),
            )
        )  # fmt: skip
        assert task.id is not None
        return task.id

    async def crm_task(self, task_id: int | None, **extra: Any) -> str:
        fields = TaskFields(
            reference=str(task_id), subject="Schedule injection training", role="nurse_educator",
            priority="routine", escalated=False, due_at=T0, status="requested", outcome=None,
            link=f"{RECEIVER}/v1/tasks/{task_id}",
        )  # fmt: skip
        props = {**properties(fields), **extra}
        if task_id is None:
            props.pop("pitwall_task_id")
        return (await self.crm.create(props)).id

    async def complete_in_crm(self, crm_id: str, outcome: str | None, owner: str = "7001") -> None:
        async with httpx.AsyncClient() as http:
            done = await http.post(
                f"{self.sandbox}/crm/_sandbox/tasks/{crm_id}/complete",
                json={"outcome": outcome, "owner": owner},
            )
            done.raise_for_status()

    def event(self, crm_id: str, value: str = "COMPLETED", **extra: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "eventId": 900 + self.n, "subscriptionId": 1, "portalId": 1, "appId": 1,
            "occurredAt": int(time.time() * 1000), "subscriptionType": "object.propertyChange",
            "attemptNumber": 0, "objectId": int(crm_id), "objectTypeId": "0-27",
            "propertyName": "hs_task_status", "propertyValue": value, "changeSource": "CRM_UI",
            **extra,
        }  # fmt: skip

    async def post(
        self,
        events: Any,
        *,
        secret: str = CRM_SECRET,
        age_ms: int = 0,
        key: str | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(events).encode()
        ts = str(int(time.time() * 1000) - age_ms)
        headers = {
            hubspot.SIGNATURE_HEADER: hubspot.signature(
                secret, "POST", f"{RECEIVER}/v1/webhooks/crm", body, ts
            ),
            hubspot.TIMESTAMP_HEADER: ts,
            "Authorization": f"Bearer {key or self.key}",
            "Content-Type": "application/json",
        }
        return await self.http.post("/v1/webhooks/crm", content=body, headers=headers)

    def trail(self, task_id: int) -> list[str]:
        return [f"{e.action} by {e.actor}" for e in self.store.tasks.trail(task_id)]

    def told(self) -> list[tuple[str, str, str]]:
        return [(j, e.event_id, str(e.data.get("outcome"))) for j, e in self.journeys.signals]


@pytest.fixture
async def receiver(sandbox_url: str, tmp_path: Path) -> AsyncIterator[Receiver]:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{sandbox_url}/crm/_sandbox/reset")).raise_for_status()
    store = Store.open(f"sqlite:///{tmp_path / 'hook.db'}", api_key_pepper="test-pepper")
    journeys = Journeys()
    crm = CrmClient(sandbox_url, "sandbox-token", timeout=2.0)
    completions = CrmCompletions(store, crm, cast(JourneyGateway, journeys))
    webhooks = Webhooks(
        CallbackService(store), secret="test-webhook-secret", twilio_token="test-twilio-token",
        public_url=RECEIVER, keys=store.api_keys, crm=completions, crm_secret=CRM_SECRET,
    )  # fmt: skip
    app = FastAPI()
    app.include_router(webhooks.router())
    key = store.api_keys.create("crm", ["webhooks:crm"]).secret
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=RECEIVER) as client:
        yield Receiver(client, store, journeys, crm, sandbox_url, key)
    await crm.aclose()
    async with httpx.AsyncClient() as http:
        await http.put(f"{sandbox_url}/crm/_sandbox/behaviour", json={})
    store.engine.dispose()


async def test_a_completion_completes_our_task_and_tells_its_journey_once(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "scheduled", owner="7001")
    event = receiver.event(crm_id)

    answer = await receiver.post([event])
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"received": 1, "outcomes": ["completed"]}
    task = receiver.store.tasks.get(task_id)
    assert task is not None
    assert (task.status, task.outcome, task.crm_task_id) == ("completed", "scheduled", crm_id)
    assert receiver.trail(task_id) == ["opened by None", "complete by crm:7001"]
    expected = ("journey/demo/pt-crmhook", f"task-{task_id}-completed", "scheduled")
    assert receiver.told() == [expected]

    # The CRM retries it, sends it twice in one batch, or replays it: nothing changes, and
    # the journey, told again with the same event id, drops the repeat.
    again = await receiver.post([event, {**event, "attemptNumber": 1}])
    assert again.json()["outcomes"] == ["already_completed", "already_completed"]
    assert receiver.trail(task_id) == ["opened by None", "complete by crm:7001"]
    assert {told for told in receiver.told()} == {expected}


async def test_two_copies_of_a_completion_at_once_complete_the_task_once(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "scheduled")
    event = receiver.event(crm_id)
    answers = await asyncio.gather(*(receiver.post([event]) for _ in range(4)))
    outcomes = sorted(a.json()["outcomes"][0] for a in answers)
    assert outcomes == ["already_completed"] * 3 + ["completed"]
    assert receiver.trail(task_id) == ["opened by None", "complete by crm:7001"]
    assert {told[1] for told in receiver.told()} == {f"task-{task_id}-completed"}


async def test_a_completion_lost_to_a_temporal_outage_arrives_on_the_crms_retry(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "scheduled")
    event = receiver.event(crm_id)
    receiver.journeys.down = True
    refused = await receiver.post([event])
    assert refused.status_code == 503 and refused.headers["retry-after"]
    receiver.journeys.down = False
    retried = await receiver.post([{**event, "attemptNumber": 1}])
    assert retried.json()["outcomes"] == ["already_completed"]  # stored the first time
    assert receiver.told() == [
        ("journey/demo/pt-crmhook", f"task-{task_id}-completed", "scheduled")
    ]


async def test_forged_and_stale_webhooks_are_refused_and_change_nothing(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "scheduled")
    event = receiver.event(crm_id)
    forged = await receiver.post([event], secret="not-the-crm-secret")
    stale = await receiver.post([event], age_ms=6 * 60 * 1000)  # signed, six minutes old
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert forged.json()["type"].endswith("bad-signature")
    # The API key is checked first: none, or one without webhooks:crm.
    wrong_scope = receiver.store.api_keys.create("payer", ["webhooks:payer"]).secret
    assert (await receiver.post([event], key=wrong_scope)).status_code == 403
    no_key = await receiver.http.post("/v1/webhooks/crm", content=b"[]")
    assert no_key.status_code == 401
    task = receiver.store.tasks.get(task_id)
    assert task is not None and task.status == "requested"
    assert receiver.trail(task_id) == ["opened by None"] and receiver.told() == []


async def test_unknown_foreign_late_and_other_events_change_nothing(receiver: Receiver) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    foreign = await receiver.crm_task(None)  # a CRM task that is not one of ours
    strange = await receiver.crm_task(987654)  # ours, by its reference, but no such task
    for other in (foreign, strange):
        await receiver.complete_in_crm(other, "done")
    # Completed, then reopened in the CRM before its webhook came (out of order).
    await receiver.complete_in_crm(crm_id, "scheduled")
    await receiver.crm.update(crm_id, {"hs_task_status": "NOT_STARTED"})
    answer = await receiver.post([
        receiver.event("51999999999"),  # no such CRM task
        receiver.event(foreign),
        receiver.event(strange),
        receiver.event(crm_id),
        receiver.event(crm_id, value="IN_PROGRESS"),
        receiver.event(crm_id, propertyName="hs_task_priority", propertyValue="HIGH"),
    ])  # fmt: skip
    assert answer.status_code == 202
    assert answer.json()["outcomes"] == [
        "unknown_task", "not_ours", "unknown_task", "not_completed", "ignored", "ignored",
    ]  # fmt: skip
    task = receiver.store.tasks.get(task_id)
    assert task is not None and task.status == "requested" and receiver.told() == []


async def test_the_echo_of_a_task_closed_elsewhere_is_a_no_op(receiver: Receiver) -> None:
    """Closed through /v1/tasks (or by its journey): the PATCH telling the CRM comes back
    as a webhook, and must not complete it a second time."""
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    service = TaskService(receiver.store, cast(JourneyGateway, receiver.journeys))
    await service.act(task_id, TaskAction("complete", outcome="scheduled"), "key-hub-1")
    await receiver.crm.update(crm_id, {"hs_task_status": "COMPLETED",
                                       "pitwall_outcome": "scheduled"})  # fmt: skip
    echo = await receiver.post([receiver.event(crm_id, changeSource="API")])
    assert echo.json()["outcomes"] == ["already_closed"]
    assert receiver.trail(task_id) == ["opened by None", "complete by key-hub-1"]
    assert [told[1] for told in receiver.told()] == [f"task-{task_id}-completed"]  # the API's

    gave_up = receiver.open_task("dose_followup")
    receiver.store.tasks.act(gave_up, TaskAction("cancel", outcome="gave_up"), "journey")
    closed = await receiver.crm_task(gave_up, hs_task_status="COMPLETED", pitwall_outcome="gave_up")
    echo = await receiver.post([receiver.event(closed)])
    assert echo.json()["outcomes"] == ["already_closed"]
    assert receiver.trail(gave_up) == ["opened by None", "cancel by journey"]


async def test_an_outcome_that_is_not_a_code_leaves_the_task_open_and_says_so_once(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "Called Mrs Example, all fine")
    for _ in range(2):
        answer = await receiver.post([receiver.event(crm_id)])
        assert answer.json()["outcomes"] == ["invalid_outcome"]
        assert "Example" not in answer.text
    task = receiver.store.tasks.get(task_id)
    assert task is not None and task.status == "requested" and receiver.told() == []
    assert receiver.trail(task_id) == ["opened by None", "crm_outcome_invalid by crm"]


async def test_a_crm_that_does_not_answer_the_fetch_is_asked_to_retry(
    receiver: Receiver,
) -> None:
    task_id = receiver.open_task()
    crm_id = await receiver.crm_task(task_id)
    await receiver.complete_in_crm(crm_id, "scheduled")
    async with httpx.AsyncClient() as http:
        await http.put(f"{receiver.sandbox}/crm/_sandbox/behaviour", json={"outage_seconds": 60})
    answer = await receiver.post([receiver.event(crm_id)])
    assert answer.status_code == 503
    task = receiver.store.tasks.get(task_id)
    assert task is not None and task.status == "requested" and receiver.told() == []


@pytest.mark.parametrize(
    "body", [b"not json", b'{"eventId": 1}', b"[1]", b'[{"eventId": 1, "objectId": 2}]']
)
async def test_a_signed_but_malformed_body_is_a_400(receiver: Receiver, body: bytes) -> None:
    answer = await receiver.post(None, raw=body)
    assert answer.status_code == 400 and answer.json()["type"].endswith("invalid-callback")
