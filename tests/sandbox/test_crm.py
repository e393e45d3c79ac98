"""The sandbox CRM behaves like HubSpot's tasks API where it matters to us: creates are
never deduplicated, search finds tasks by property (after its index lag), and a change of
a task's status posts a webhook signed as HubSpot signs (v3), retried until answered."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.sandbox.harness import SECRET, Sink, SinkRequest

TASKS = "/crm/v3/objects/tasks"
AUTH = {"Authorization": "Bearer sandbox-token"}
WEBHOOK = "/v1/webhooks/crm"


@pytest.fixture
async def crm(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, headers=AUTH) as http:
        (await http.post("/crm/_sandbox/reset")).raise_for_status()
        yield http
        (await http.post("/crm/_sandbox/reset")).raise_for_status()


def task(reference: str, **extra: str) -> dict[str, Any]:
    return {
        "properties": {
            "hs_task_subject": "Schedule injection training", "hs_task_priority": "MEDIUM",
            "hs_timestamp": "2026-12-08T15:00:00.000Z", "pitwall_task_id": reference,
            "pitwall_role": "nurse_educator", **extra,
        }
    }  # fmt: skip


def search(reference: str) -> dict[str, Any]:
    return {
        "filterGroups": [
            {"filters": [{"propertyName": "pitwall_task_id", "operator": "EQ", "value": reference}]}
        ]
    }


def for_task(crm_id: str) -> Any:
    def match(r: SinkRequest) -> bool:
        return r.path == WEBHOOK and json.loads(r.body)[0]["objectId"] == int(crm_id)

    return match


async def test_a_repeated_create_makes_a_second_task_and_search_finds_both(
    crm: httpx.AsyncClient,
) -> None:
    first = await crm.post(TASKS, json=task("41"), headers={"Idempotency-Key": "same"})
    second = await crm.post(TASKS, json=task("41"), headers={"Idempotency-Key": "same"})
    assert (first.status_code, second.status_code) == (201, 201)
    ids = [first.json()["id"], second.json()["id"]]
    assert ids[0] != ids[1]  # like HubSpot: no dedupe on any key
    assert first.json()["properties"]["hs_task_status"] == "NOT_STARTED"
    found = await crm.post(f"{TASKS}/search", json=search("41"))
    assert found.json()["total"] == 2
    assert [r["id"] for r in found.json()["results"]] == ids
    other = await crm.post(f"{TASKS}/search", json=search("42"))
    assert other.json() == {"total": 0, "results": []}


async def test_search_sees_a_new_task_only_after_its_index_lag(crm: httpx.AsyncClient) -> None:
    (await crm.put("/crm/_sandbox/behaviour", json={"search_lag_seconds": 0.3})).raise_for_status()
    made = (await crm.post(TASKS, json=task("43"))).json()
    assert (await crm.post(f"{TASKS}/search", json=search("43"))).json()["total"] == 0
    assert (await crm.get(f"{TASKS}/{made['id']}")).status_code == 200  # fetch sees it
    deadline = time.monotonic() + 5
    while (await crm.post(f"{TASKS}/search", json=search("43"))).json()["total"] == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert time.monotonic() < deadline


async def test_completing_a_task_as_a_user_posts_one_signed_webhook(
    crm: httpx.AsyncClient, sink: Sink, sandbox_url: str
) -> None:
    made = (await crm.post(TASKS, json=task("44"))).json()
    done = await crm.post(
        f"/crm/_sandbox/tasks/{made['id']}/complete", json={"outcome": "scheduled", "owner": "77"}
    )
    assert done.json()["changed"] is True
    [hook] = await sink.wait_for(for_task(made["id"]))
    timestamp = hook.headers["x-hubspot-request-timestamp"]
    assert abs(int(timestamp) - time.time() * 1000) < 60_000  # milliseconds
    message = b"POST" + f"{sink.url}{WEBHOOK}".encode() + hook.body + timestamp.encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    assert hook.headers["x-hubspot-signature-v3"] == expected.decode()
    [event] = json.loads(hook.body)
    assert event["subscriptionType"] == "object.propertyChange"
    assert (event["objectTypeId"], event["propertyName"], event["propertyValue"]) == (
        "0-27", "hs_task_status", "COMPLETED",
    )  # fmt: skip
    assert (event["changeSource"], event["sourceId"], event["attemptNumber"]) == (
        "CRM_UI", "userId:77", 0,
    )  # fmt: skip
    fetched = (await crm.get(f"{TASKS}/{made['id']}")).json()["properties"]
    assert (fetched["hs_task_status"], fetched["pitwall_outcome"]) == ("COMPLETED", "scheduled")
    assert fetched["hubspot_owner_id"] == "77" and fetched["hs_task_completion_date"]

    again = await crm.post(f"/crm/_sandbox/tasks/{made['id']}/complete", json={})
    assert again.json()["changed"] is False
    [listed] = (await crm.get("/crm/_sandbox/tasks", params={"pitwall_task_id": "44"})).json()
    assert listed["webhook_event_ids"] == [event["eventId"]]  # completing again posted none


async def test_an_api_change_of_status_posts_a_webhook_and_other_changes_do_not(
    crm: httpx.AsyncClient, sink: Sink
) -> None:
    made = (await crm.post(TASKS, json=task("45"))).json()
    same = {"properties": {"hs_task_priority": "HIGH", "hs_task_status": "NOT_STARTED"}}
    assert (await crm.patch(f"{TASKS}/{made['id']}", json=same)).status_code == 200
    closing = {"properties": {"hs_task_status": "COMPLETED", "pitwall_outcome": "gave_up"}}
    assert (await crm.patch(f"{TASKS}/{made['id']}", json=closing)).status_code == 200
    [hook] = await sink.wait_for(for_task(made["id"]))
    assert json.loads(hook.body)[0]["changeSource"] == "API"
    [listed] = (await crm.get("/crm/_sandbox/tasks", params={"pitwall_task_id": "45"})).json()
    assert len(listed["webhook_event_ids"]) == 1


async def test_a_refused_webhook_is_retried_signed_again_with_the_same_event(
    crm: httpx.AsyncClient, sink: Sink
) -> None:
    sink.fail_next[WEBHOOK] = 1
    made = (await crm.post(TASKS, json=task("46"))).json()
    await crm.post(f"/crm/_sandbox/tasks/{made['id']}/complete", json={"outcome": "reached"})
    first, second = await sink.wait_for(for_task(made["id"]), count=2)
    assert (first.status, second.status) == (503, 200)
    one, two = json.loads(first.body)[0], json.loads(second.body)[0]
    assert one["eventId"] == two["eventId"] and (one["attemptNumber"], two["attemptNumber"]) == (
        0, 1,
    )  # fmt: skip


async def test_duplicate_webhooks_carry_the_same_event_id(
    crm: httpx.AsyncClient, sink: Sink
) -> None:
    await crm.put("/crm/_sandbox/behaviour", json={"duplicate_webhooks": True})
    made = (await crm.post(TASKS, json=task("47"))).json()
    await crm.post(f"/crm/_sandbox/tasks/{made['id']}/complete", json={})
    one, two = await sink.wait_for(for_task(made["id"]), count=2)
    assert json.loads(one.body)[0]["eventId"] == json.loads(two.body)[0]["eventId"]


async def test_errors_are_shaped_like_hubspots(crm: httpx.AsyncClient, sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as anonymous:
        denied = await anonymous.post(TASKS, json=task("48"))
    assert denied.status_code == 401 and denied.json()["category"] == "INVALID_AUTHENTICATION"
    unknown = await crm.post(TASKS, json=task("48", favourite_colour="blue"))
    assert unknown.status_code == 400 and unknown.json()["category"] == "VALIDATION_ERROR"
    assert unknown.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    no_due = {"properties": {"hs_task_subject": "x"}}
    assert (await crm.post(TASKS, json=no_due)).status_code == 400
    bad_status = task("48", hs_task_status="DONE")
    assert (await crm.post(TASKS, json=bad_status)).status_code == 400
    missing = await crm.get(f"{TASKS}/123")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    await crm.put("/crm/_sandbox/behaviour", json={"outage_seconds": 60, "outage_status": 502})
    assert (await crm.post(f"{TASKS}/search", json=search("48"))).status_code == 502
