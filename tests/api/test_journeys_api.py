"""The journey API over HTTP against the real dev server and a worker: outcomes, not calls."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from api.app import create_app
from api.deps import journey_gateway
from tests.api.conftest import (
    KNOWN_TEMPLATES,
    PROGRAM,
    TEMPLATE,
    ApiStack,
    app_settings,
    eventually,
    free_port,
    new_patient,
    running,
    start_body,
)

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://pitwall.dev/problems/{kind}"
    assert body["status"] == status
    assert body["title"]
    return dict(body)


async def accepted_updates(api: ApiStack, journey_id: str, name: str) -> int:
    """Updates named `name` that reached the journey's history."""
    history = await api.temporal.get_workflow_handle(journey_id).fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == name
    )


# -- start --------------------------------------------------------------------------------


async def test_start_creates_then_returns_the_same_journey(api: ApiStack) -> None:
    body = start_body(new_patient(), context={"timezone": "America/Chicago"})
    first = await api.http.post("/v1/journeys", json=body)
    again = await api.http.post("/v1/journeys", json=body)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert first.json()["created"] is True and again.json()["created"] is False
    journey_id = first.json()["journey_id"]
    assert again.json()["journey_id"] == journey_id
    assert first.headers["location"] == f"/v1/journeys/{journey_id}"
    assert first.json()["template_id"] == TEMPLATE


async def test_start_fields_reach_the_workflow_input_and_are_bounded(api: ApiStack) -> None:
    for bad in (0, -1, 10_000_000):
        refused = await api.http.post(
            "/v1/journeys", json=start_body(new_patient(), time_scale=bad)
        )
        assert_problem(refused, 422, "invalid-request")
    started = await api.http.post(
        "/v1/journeys", json=start_body(new_patient(), time_scale=86400, opened_by="hub-intake")
    )
    assert started.status_code == 201, started.text
    history = await api.temporal.get_workflow_handle(started.json()["journey_id"]).fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert json.loads(payload.data)["time_scale"] == 86400
    assert json.loads(payload.data)["opened_by"] == "hub-intake"


async def test_two_hundred_concurrent_identical_starts_make_one_journey(api: ApiStack) -> None:
    body = start_body(new_patient())
    responses = await asyncio.gather(
        *(api.http.post("/v1/journeys", json=body) for _ in range(200))
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 199}, statuses
    ids = {r.json()["journey_id"] for r in responses}
    assert len(ids) == 1
    journey_id = ids.pop()

    async def runs() -> list[Any]:
        query = f"WorkflowId = '{journey_id}'"
        return [w async for w in api.temporal.list_workflows(query)]

    assert len(await eventually(runs)) == 1


async def test_unknown_template_is_422_with_the_known_ids(api: ApiStack) -> None:
    response = await api.http.post(
        "/v1/journeys", json={**start_body(new_patient()), "template": "no_such_template"}
    )
    body = assert_problem(response, 422, "unknown-template")
    assert body["known_templates"] == KNOWN_TEMPLATES


async def test_unknown_template_version_and_parameter_are_422(api: ApiStack) -> None:
    version = await api.http.post(
        "/v1/journeys", json={**start_body(new_patient()), "template_version": 99}
    )
    assert_problem(version, 422, "unknown-template")
    param = await api.http.post(
        "/v1/journeys", json=start_body(new_patient(), params={"not_a_param": 1})
    )
    body = assert_problem(param, 422, "invalid-request")
    assert [e["field"] for e in body["errors"]] == ["body.params.not_a_param"]


@pytest.mark.parametrize("patient_id", ["5551234567", "1984-03-02", "MRN-00123456", "john-smith"])
async def test_a_callers_patient_id_never_becomes_part_of_a_journey(
    api: ApiStack, patient_id: str
) -> None:
    start = await api.http.post("/v1/journeys", json=start_body(patient_id))
    assert start.status_code == 201, start.text
    journey_id = start.json()["journey_id"]
    assert patient_id not in journey_id and patient_id not in start.text
    assert journey_id == f"journey/{PROGRAM}/{api.ref(patient_id)}"

    async def listed() -> list[str]:
        page = await api.http.get("/v1/journeys", params={"patient": patient_id})
        return [item["journey_id"] for item in page.json()["items"]]

    assert await eventually(listed) == [journey_id]
    assert patient_id not in (await api.http.get(f"/v1/journeys/{journey_id}")).text
    # A journey id is Pitwall's own: one built from patient data is refused, unechoed.
    by_id = await api.http.get(f"/v1/journeys/journey/{PROGRAM}/{patient_id}")
    assert by_id.status_code in (404, 422) and patient_id not in by_id.text


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "tab\there"])
async def test_a_malformed_patient_id_is_422_and_never_echoed(api: ApiStack, bad: str) -> None:
    start = await api.http.post("/v1/journeys", json=start_body(bad))
    body = assert_problem(start, 422, "invalid-request")
    assert [e["field"] for e in body["errors"]] == ["body.patient_id"]
    if bad:
        assert bad not in start.text


async def test_listing_an_unknown_patient_is_empty(api: ApiStack) -> None:
    page = await api.http.get("/v1/journeys", params={"patient": new_patient()})
    assert page.status_code == 200 and page.json()["items"] == []


async def test_unexpected_fields_and_bad_json_are_422(api: ApiStack) -> None:
    extra = await api.http.post("/v1/journeys", json={**start_body(new_patient()), "name": "x"})
    assert_problem(extra, 422, "invalid-request")
    broken = await api.http.post(
        "/v1/journeys", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(broken, 422, "invalid-request")


# -- state and listing --------------------------------------------------------------------


async def test_state_of_a_running_journey(api: ApiStack) -> None:
    journey_id = await api.start()
    await api.reaches(journey_id, "consent")
    response = await api.http.get(f"/v1/journeys/{journey_id}")
    assert response.status_code == 200
    state = response.json()
    assert state["journey_id"] == journey_id
    assert state["status"] == "running"
    assert state["stage"] == "CONSENT_PENDING"
    assert state["pending_wait"]["event_types"] == ["consent.signed", "consent.declined"]


async def test_unknown_journey_is_404_problem(api: ApiStack) -> None:
    response = await api.http.get(f"/v1/journeys/journey/{PROGRAM}/pt-nobody-here")
    body = assert_problem(response, 404, "journey-not-found")
    assert "pt-nobody-here" not in response.text
    assert "detail" not in body or "Traceback" not in body["detail"]
    for action in ("pause", "resume", "cancel"):
        control = await api.http.post(f"/v1/journeys/journey/{PROGRAM}/pt-nobody-here/{action}")
        assert_problem(control, 404, "journey-not-found")


async def test_malformed_journey_id_is_422(api: ApiStack) -> None:
    response = await api.http.get("/v1/journeys/not-a-journey-id")
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["field"] == "path.journey_id"


async def test_list_by_patient_template_and_stage(api: ApiStack) -> None:
    patient = new_patient()
    first = await api.start(patient)
    second_body = start_body(patient, business_key="second-rx")
    second = (await api.http.post("/v1/journeys", json=second_body)).json()["journey_id"]
    other = await api.start()
    for journey_id in (first, second, other):
        await api.reaches(journey_id, "consent")

    async def listed(**params: Any) -> set[str]:
        response = await api.http.get("/v1/journeys", params=params)
        assert response.status_code == 200, response.text
        return {item["journey_id"] for item in response.json()["items"]}

    async def both() -> set[str]:
        found = await listed(patient=patient, template=TEMPLATE, stage="CONSENT_PENDING")
        return found if found == {first, second} else set()

    assert await eventually(both) == {first, second}
    assert other not in await listed(patient=patient)
    assert await listed(patient=patient, stage="PA_SUBMITTED") == set()
    assert {first, second, other} <= await listed(program=PROGRAM, running=True, page_size=100)

    page = await api.http.get("/v1/journeys", params={"program": PROGRAM, "page_size": 1})
    token = page.json()["next_page_token"]
    assert len(page.json()["items"]) == 1 and token
    following = await api.http.get(
        "/v1/journeys", params={"program": PROGRAM, "page_size": 1, "page_token": token}
    )
    assert following.status_code == 200
    assert following.json()["items"][0]["journey_id"] != page.json()["items"][0]["journey_id"]


@pytest.mark.parametrize(
    "params",
    [
        {"patient": "pt-1' OR '1'='1"},
        {"stage": "X' OR WorkflowId != '"},
        {"template": "specialty_start')"},
        {"page_size": 0},
        {"page_token": "not base64!"},
        {"page_token": "eyJSdW5JRCI6IngifQ" * 3},  # well-formed, but not one we gave out
    ],
)
async def test_listing_refuses_values_that_could_change_the_query(
    api: ApiStack, params: dict[str, Any]
) -> None:
    response = await api.http.get("/v1/journeys", params=params)
    body = assert_problem(response, 422, "invalid-request")
    assert str(next(iter(params.values()))) not in response.text
    assert body["errors"]


# -- events, control, preferences -------------------------------------------------------


async def test_event_is_accepted_then_a_duplicate(api: ApiStack) -> None:
    journey_id = await api.start()
    await api.reaches(journey_id, "consent")
    event = {"event_id": "crm-1", "type": "consent.signed", "correlation_key": "CR-1"}
    first = await api.http.post(f"/v1/journeys/{journey_id}/events", json=event)
    again = await api.http.post(f"/v1/journeys/{journey_id}/events", json=event)

    assert first.status_code == again.status_code == 202
    assert first.json() == {"accepted": True, "duplicate": False}
    assert again.json() == {"accepted": False, "duplicate": True}

    async def moved_on() -> bool:
        state = await api.journeys.state(journey_id)
        return state.visits.get("consent") == 1 and state.current_step != "consent"

    assert await eventually(moved_on)


async def test_unknown_event_type_is_422(api: ApiStack) -> None:
    journey_id = await api.start()
    response = await api.http.post(
        f"/v1/journeys/{journey_id}/events",
        json={"event_id": "e-1", "type": "pharmacy.teleported", "correlation_key": "RX-1"},
    )
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["field"] == "body.type"
    assert body["detail"] == "unknown event type; did you mean 'pharmacy.delivered'?"
    assert "pharmacy.shipped" in body["known_event_types"]


async def test_a_program_event_a_template_declares_is_accepted(api: ApiStack) -> None:
    journey_id = await api.start()
    declared = {"event_id": "dose-1", "type": "patient.first_dose_confirmed",
                "correlation_key": "schedule_training-pt-x"}  # fmt: skip
    accepted = await api.http.post(f"/v1/journeys/{journey_id}/events", json=declared)
    assert accepted.status_code == 202 and accepted.json()["accepted"] is True
    typo = {**declared, "event_id": "dose-2", "type": "patient.first_dose_confirmd"}
    refused = await api.http.post(f"/v1/journeys/{journey_id}/events", json=typo)
    body = assert_problem(refused, 422, "invalid-request")
    assert body["detail"].endswith("did you mean 'patient.first_dose_confirmed'?")


async def test_pause_twice_is_409_and_resume_continues(api: ApiStack) -> None:
    journey_id = await api.start()
    paused = await api.http.post(f"/v1/journeys/{journey_id}/pause", json={"reason": "hospital"})
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    again = await api.http.post(f"/v1/journeys/{journey_id}/pause")
    body = assert_problem(again, 409, "invalid-state")
    assert body["detail"] == "cannot pause a journey that is paused"
    assert await accepted_updates(api, journey_id, "pause") == 1

    async def on_hold(want: bool) -> bool:
        page = await api.http.get("/v1/journeys", params={"stage": "ON_HOLD", "page_size": 100})
        return (journey_id in {item["journey_id"] for item in page.json()["items"]}) == want

    # Paused is indexed as stage ON_HOLD: operators filter for it (Temporal UI, /v1).
    assert await eventually(lambda: on_hold(True))
    resumed = await api.http.post(f"/v1/journeys/{journey_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    assert await eventually(lambda: on_hold(False))
    assert_problem(await api.http.post(f"/v1/journeys/{journey_id}/resume"), 409, "invalid-state")


async def test_cancel_then_the_finished_journey_refuses_changes(api: ApiStack) -> None:
    patient = new_patient()
    journey_id = await api.start(patient)
    await api.reaches(journey_id, "consent")
    cancelled = await api.http.post(
        f"/v1/journeys/{journey_id}/cancel", json={"reason": "withdrawn"}
    )
    assert cancelled.status_code == 202, cancelled.text
    final = await asyncio.wait_for(api.journeys.result(journey_id), 15)
    assert final.status == "cancelled" and final.outcome_reason == "withdrawn"

    state = await api.http.get(f"/v1/journeys/{journey_id}")
    assert state.status_code == 200 and state.json()["status"] == "cancelled"
    for action in ("pause", "resume", "cancel"):
        response = await api.http.post(f"/v1/journeys/{journey_id}/{action}")
        assert_problem(response, 409, "journey-finished")
    event = {"event_id": "late-1", "type": "operator.note", "correlation_key": "note"}
    late = await api.http.post(f"/v1/journeys/{journey_id}/events", json=event)
    assert_problem(late, 409, "journey-finished")
    # Starting it again returns the finished journey, never a second one.
    restart = await api.http.post("/v1/journeys", json=start_body(patient))
    assert restart.status_code == 200 and restart.json()["journey_id"] == journey_id


async def test_preferences_live_only_in_the_patient_record(api: ApiStack) -> None:
    journey_id = await api.start()
    gone = await api.http.patch(f"/v1/journeys/{journey_id}/preferences", json={"language": "es"})
    assert_problem(gone, 405, "method-not-allowed")
    # The retired journey update is refused before it reaches history, whoever sends it.
    handle = api.temporal.get_workflow_handle(journey_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("set_preferences", {"language": "es"})
    assert "PUT /v1/patients/{id}/preferences" in str(refused.value.cause)
    assert await accepted_updates(api, journey_id, "set_preferences") == 0
    assert "preferences" not in (await api.http.get(f"/v1/journeys/{journey_id}")).json()


# -- templates ----------------------------------------------------------------------------


async def test_templates_list_and_detail(api: ApiStack) -> None:
    listing = await api.http.get("/v1/templates")
    assert listing.status_code == 200
    assert [t["id"] for t in listing.json()] == KNOWN_TEMPLATES
    detail = await api.http.get(f"/v1/templates/{TEMPLATE}", params={"version": 1})
    assert detail.status_code == 200
    template = detail.json()
    assert template["versions"] == [1, 2]
    assert template["steps"][0]["id"] == "consent_request"
    latest = (await api.http.get(f"/v1/templates/{TEMPLATE}")).json()
    assert (latest["version"], latest["steps"][0]["id"]) == (2, "referral")
    assert template["mermaid"].startswith("flowchart")
    missing = await api.http.get("/v1/templates/no_such_template")
    assert assert_problem(missing, 404, "template-not-found")["known_templates"] == KNOWN_TEMPLATES
    assert_problem(await api.http.get(f"/v1/templates/{TEMPLATE}?version=7"), 404,
                   "template-not-found")  # fmt: skip


# -- the rest of the app --------------------------------------------------------------------


async def test_openapi_docs_health_and_webhooks_still_served(api: ApiStack) -> None:
    schema = (await api.http.get("/openapi.json")).json()
    assert "/v1/journeys/{journey_id}/events" in schema["paths"]
    assert "/v1/webhooks/pharmacy" in schema["paths"]
    assert (await api.http.get("/docs")).status_code == 200
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    unsigned = await api.http.post("/v1/webhooks/pharmacy", json={"event_id": "x"})
    assert_problem(unsigned, 401, "bad-signature")
    assert_problem(await api.http.get("/v1/nowhere"), 404, "not-found")
    assert_problem(await api.http.delete("/v1/journeys"), 405, "method-not-allowed")


async def test_unexpected_error_is_a_bare_500_problem(api: ApiStack, tmp_path: Path) -> None:
    class Exploding:
        async def state(self, journey_id: str) -> None:
            raise ValueError(f"boom for {journey_id} pt-secret-5551234")

    app = create_app(api.settings, temporal=api.temporal)
    app.dependency_overrides[journey_gateway] = Exploding
    async with running(app) as http:
        response = await http.get(f"/v1/journeys/journey/{PROGRAM}/pt-secret")
    body = assert_problem(response, 500, "internal-error")
    assert body["error_id"]
    assert "pt-secret" not in response.text and "boom" not in response.text
    assert "Traceback" not in response.text


async def test_temporal_down_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, "nowhere", address=f"127.0.0.1:{free_port()}")
    async with running(create_app(settings)) as http:
        calls = [
            http.post("/v1/journeys", json=start_body(new_patient())),
            http.get(f"/v1/journeys/journey/{PROGRAM}/pt-someone"),
            http.get("/v1/journeys", params={"program": PROGRAM}),
            http.post(f"/v1/journeys/journey/{PROGRAM}/pt-someone/pause"),
        ]
        for response in await asyncio.gather(*calls):
            assert_problem(response, 503, "temporal-unavailable")
            assert int(response.headers["retry-after"]) > 0
            assert "tcp connect" not in response.text
        # What needs no Temporal still works.
        assert (await http.get("/v1/templates")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
