"""The Python clients against the running API / Temporal: what a service would see."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from client import PitwallHttpClient, SyncJourneyClient, SyncPitwallHttpClient
from client.http import Conflict, InvalidRequest, NotFound, Unavailable
from client.journeys import ControlRejected, JourneyNotFound
from client.models import JourneyFilter
from domain.journey import PreferencesChange, QuietHours
from domain.template_loader import get_template
from tests.api.conftest import (
    KNOWN_TEMPLATES,
    PROGRAM,
    TEMPLATE,
    ApiStack,
    admin_key,
    app_settings,
    eventually,
    free_port,
    new_patient,
)


def http_client(api: ApiStack) -> PitwallHttpClient:
    return PitwallHttpClient(
        "http://api", api_key=api.admin_key, transport=httpx.ASGITransport(app=api.app)
    )


async def test_async_http_client_round_trip(api: ApiStack) -> None:
    patient = new_patient()
    async with http_client(api) as pitwall:
        ack = await pitwall.start(TEMPLATE, patient_ref=patient, program=PROGRAM)
        again = await pitwall.start(TEMPLATE, patient_ref=patient, program=PROGRAM)
        assert ack.created and not again.created and again.journey_id == ack.journey_id
        await api.reaches(ack.journey_id, "consent")

        state = await pitwall.state(ack.journey_id)
        assert state.stage == "CONSENT_PENDING"

        first = await pitwall.send_event(
            ack.journey_id, event_id="svc-1", type="operator.note", correlation_key="note-1"
        )
        dup = await pitwall.send_event(
            ack.journey_id, event_id="svc-1", type="operator.note", correlation_key="note-1"
        )
        assert (first.accepted, dup.duplicate) == (True, True)

        assert (await pitwall.pause(ack.journey_id, "on hold")).status == "paused"
        with pytest.raises(Conflict) as conflict:
            await pitwall.pause(ack.journey_id)
        assert conflict.value.type.endswith("/invalid-state")
        assert (await pitwall.resume(ack.journey_id)).status == "running"

        prefs = await pitwall.set_preferences(
            ack.journey_id, channel="sms", quiet_hours=("22:00", "07:30"), language="en"
        )
        assert prefs.preferences.quiet_hours == QuietHours(start="22:00", end="07:30")
        with pytest.raises(InvalidRequest) as invalid:
            await pitwall.set_preferences(ack.journey_id, quiet_hours=("24:00", "07:00"))
        assert invalid.value.fields == ["body.quiet_hours.start"]

        async def listed() -> list[str]:
            return [j.journey_id async for j in pitwall.iter_journeys(patient=patient)]

        assert await eventually(listed) == [ack.journey_id]

        templates = await pitwall.templates()
        assert [t.id for t in templates] == KNOWN_TEMPLATES
        assert (await pitwall.template(TEMPLATE)).mermaid.startswith("flowchart")

        with pytest.raises(NotFound):
            await pitwall.state(f"journey/{PROGRAM}/pt-never-started")
        with pytest.raises(InvalidRequest) as phi:
            await pitwall.start(TEMPLATE, patient_ref="5551234567", program=PROGRAM)
        assert phi.value.fields == ["body.patient_ref"]
        assert (await pitwall.cancel(ack.journey_id, "done")).journey_id == ack.journey_id


async def test_http_client_reports_unavailable_with_retry_after(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, "nowhere", address=f"127.0.0.1:{free_port()}")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pitwall = PitwallHttpClient(
            "http://api", api_key=admin_key(app), transport=httpx.ASGITransport(app=app)
        )
        async with pitwall:
            with pytest.raises(Unavailable) as down:
                await pitwall.start(TEMPLATE, patient_ref=new_patient(), program=PROGRAM)
    assert down.value.status == 503 and down.value.retry_after == 5


async def test_sync_http_client_over_a_socket(api: ApiStack, served: str) -> None:
    patient = new_patient()

    def service() -> tuple[bool, bool, str]:
        with SyncPitwallHttpClient(served, api_key=api.admin_key) as pitwall:
            ack = pitwall.start(TEMPLATE, patient_ref=patient, program=PROGRAM)
            again = pitwall.start(TEMPLATE, patient_ref=patient, program=PROGRAM)
            state = pitwall.state(ack.journey_id)
            event = pitwall.send_event(
                ack.journey_id, event_id="sync-1", type="operator.note", correlation_key="n"
            )
            with pytest.raises(NotFound):
                pitwall.state(f"journey/{PROGRAM}/pt-never-started")
            return ack.created and not again.created, event.accepted, state.journey_id

    created_once, accepted, journey_id = await asyncio.to_thread(service)
    assert created_once and accepted
    assert journey_id == f"journey/{PROGRAM}/{patient}"


async def test_sync_journey_client_straight_to_temporal(api: ApiStack) -> None:
    address = api.env.client.service_client.config.target_host
    queue = api.settings.temporal.task_queue
    patient = new_patient()

    def script() -> None:
        with SyncJourneyClient.connect(address, task_queue=queue) as journeys:
            ack = journeys.start(get_template(TEMPLATE), patient_ref=patient, program=PROGRAM)
            assert ack.created
            assert journeys.state(ack.journey_id).journey_id == ack.journey_id
            assert journeys.pause(ack.journey_id).status == "paused"
            with pytest.raises(ControlRejected) as rejected:
                journeys.set_preferences(ack.journey_id, PreferencesChange(channel="fax"))
            assert rejected.value.error_type == "InvalidPreferences"
            page = journeys.find(JourneyFilter(patient_ref=patient))
            assert all(item.patient_ref == patient for item in page.items)
            with pytest.raises(JourneyNotFound):
                journeys.state(f"journey/{PROGRAM}/pt-never-started")

    await asyncio.to_thread(script)
