"""The Python clients against the running API / Temporal: what a service would see."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from client import PitwallHttpClient, SyncPitwallHttpClient
from client.errors import Conflict, InvalidRequest, NotFound, Unavailable
from contract.journeys import JourneyEvent, StartJourney
from contract.patients import ConsentGrantIn, ContactPoint, PatientIn, PreferencesPut, QuietHoursIn
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


def start(patient_id: str) -> StartJourney:
    return StartJourney(template=TEMPLATE, patient_id=patient_id, program=PROGRAM)


def note(event_id: str) -> JourneyEvent:
    return JourneyEvent(event_id=event_id, type="operator.note", correlation_key="note-1")


def http_client(api: ApiStack) -> PitwallHttpClient:
    return PitwallHttpClient(
        "http://api", api_key=api.admin_key, transport=httpx.ASGITransport(app=api.app)
    )


async def test_async_http_client_round_trip(api: ApiStack) -> None:
    patient = new_patient()
    async with http_client(api) as pitwall:
        registered = await pitwall.register_patient(
            patient, PatientIn(telecom=[ContactPoint(system="phone", value="+15555550144")])
        )
        assert registered.created and registered.contacts == {"phone": "+1•••••0144"}
        consent = await pitwall.grant_consent(
            patient, ConsentGrantIn(channel="sms", purpose="treatment", program=PROGRAM)
        )
        assert consent.address == "+1•••••0144"
        ack = await pitwall.start(start(patient))
        again = await pitwall.start(start(patient))
        assert ack.created and not again.created and again.journey_id == ack.journey_id
        assert ack.journey_id == f"journey/{PROGRAM}/{registered.patient_ref}"
        await api.reaches(ack.journey_id, "consent")

        state = await pitwall.state(ack.journey_id)
        assert state.stage == "CONSENT_PENDING"
        first = await pitwall.send_event(ack.journey_id, note("svc-1"))
        dup = await pitwall.send_event(ack.journey_id, note("svc-1"))
        assert (first.accepted, dup.duplicate) == (True, True)

        assert (await pitwall.pause(ack.journey_id, "on hold")).status == "paused"
        with pytest.raises(Conflict) as conflict:
            await pitwall.pause(ack.journey_id)
        assert conflict.value.type.endswith("/invalid-state")
        assert (await pitwall.resume(ack.journey_id)).status == "running"

        prefs = await pitwall.set_preferences(
            patient,
            PreferencesPut(
                channel_ranking=["sms"], quiet_hours=QuietHoursIn(start="22:00", end="07:30")
            ),
        )
        assert prefs.current is not None and prefs.current.quiet_hours is not None
        assert prefs.current.quiet_hours.start == "22:00"
        with pytest.raises(InvalidRequest) as invalid:
            await pitwall.set_preferences(patient, PreferencesPut(channel_ranking=["sms", "sms"]))
        assert invalid.value.fields == ["body.channel_ranking"]

        async def listed() -> list[str]:
            return [j.journey_id async for j in pitwall.iter_journeys(patient_id=patient)]

        assert await eventually(listed) == [ack.journey_id]
        timeline = await pitwall.timeline(patient)
        assert [e.type for e in timeline.entries][:2] == ["patient.registered", "consent.changed"]

        templates = await pitwall.templates()
        assert [t.id for t in templates] == KNOWN_TEMPLATES
        assert (await pitwall.template(TEMPLATE)).mermaid.startswith("flowchart")

        with pytest.raises(NotFound):
            await pitwall.state(f"journey/{PROGRAM}/pt-never-started")
        with pytest.raises(NotFound):
            await pitwall.patient(new_patient())
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
                await pitwall.start(start(new_patient()))
    assert down.value.status == 503 and down.value.retry_after == 5


async def test_sync_http_client_over_a_socket(api: ApiStack, served: str) -> None:
    patient = new_patient()

    def service() -> tuple[bool, bool, str, str]:
        with SyncPitwallHttpClient(served, api_key=api.admin_key) as pitwall:
            registered = pitwall.register_patient(patient, PatientIn(language="es"))
            ack = pitwall.start(start(patient))
            again = pitwall.start(start(patient))
            state = pitwall.state(ack.journey_id)
            event = pitwall.send_event(ack.journey_id, note("sync-1"))
            with pytest.raises(NotFound):
                pitwall.state(f"journey/{PROGRAM}/pt-never-started")
            listed = [j.journey_id for j in pitwall.iter_journeys(patient_id=patient)]
            assert listed in ([], [ack.journey_id])  # visibility: eventually consistent
            created_once = ack.created and not again.created
            return created_once, event.accepted, state.journey_id, registered.patient_ref

    created_once, accepted, journey_id, patient_ref = await asyncio.to_thread(service)
    assert created_once and accepted
    assert journey_id == f"journey/{PROGRAM}/{patient_ref}"
