"""The /v1 API for services (hub intake, EHR integration, CRM), typed with the wire
contract (contract/):

    async with PitwallHttpClient("https://pitwall.example", api_key=KEY) as pitwall:
        await pitwall.register_patient("MRN-0012345", PatientIn(telecom=[...]))
        ack = await pitwall.start(StartJourney(template="specialty_start",
                                               patient_id="MRN-0012345", program="p1"))
        state = await pitwall.state(ack.journey_id)

`api_key` is sent as `Authorization: Bearer <key>` (`starter.py keys create`). A
problem+json answer raises a PitwallApiError subclass (client/errors.py). Starting,
registering and events are idempotent, so they are safe to retry. The blocking client
is client/sync.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from client.errors import raise_for_problem
from contract.journeys import Control, JourneyEvent, JourneyPage, JourneySummary, StartJourney
from contract.patients import (
    ConsentGrantIn,
    ConsentOut,
    ConsentRevokeIn,
    ConsentRevokeOut,
    ConsentsOut,
    PatientIn,
    PatientOut,
    PatientRegistered,
    PreferencesOut,
    PreferencesPut,
    TimelineOut,
)
from contract.templates import TemplateDetail, TemplateSummary
from domain.journey import EventAck, JourneyState, StartAck

M = TypeVar("M", bound=BaseModel)
_TEMPLATES = TypeAdapter(list[TemplateSummary])


def _query(**values: Any) -> dict[str, str]:
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _patient(patient_id: str) -> str:
    return f"/v1/patients/{quote(patient_id, safe='')}"


class PitwallHttpClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"accept": "application/json, application/problem+json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    async def _call(
        self,
        answer: type[M],
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: dict[str, str] | None = None,
    ) -> M:
        content = body.model_dump_json(exclude_unset=True) if body is not None else None
        response = await self._http.request(
            method,
            path,
            content=content,
            params=params or None,
            headers={"content-type": "application/json"} if content is not None else None,
        )
        raise_for_problem(response)
        return answer.model_validate_json(response.content)

    # -- journeys ------------------------------------------------------------------------
    async def start(self, request: StartJourney) -> StartAck:
        """Start the journey or get the existing one (`created` tells which)."""
        return await self._call(StartAck, "POST", "/v1/journeys", request)

    async def state(self, journey_id: str) -> JourneyState:
        return await self._call(JourneyState, "GET", f"/v1/journeys/{journey_id}")

    async def find(
        self,
        *,
        patient_id: str | None = None,
        program: str | None = None,
        template: str | None = None,
        stage: str | None = None,
        needs_attention: bool | None = None,
        running: bool | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> JourneyPage:
        """One page of journeys (visibility: eventually consistent)."""
        params = _query(
            patient=patient_id, program=program, template=template, stage=stage,
            needs_attention=needs_attention, running=running, page_size=page_size,
            page_token=page_token,
        )  # fmt: skip
        return await self._call(JourneyPage, "GET", "/v1/journeys", params=params)

    async def iter_journeys(self, **filters: Any) -> AsyncIterator[JourneySummary]:
        """Every journey matching `find`'s filters, page after page."""
        token: str | None = None
        while True:
            page = await self.find(**filters, page_token=token)
            for item in page.items:
                yield item
            token = page.next_page_token
            if not token:
                return

    async def send_event(self, journey_id: str, event: JourneyEvent) -> EventAck:
        return await self._call(EventAck, "POST", f"/v1/journeys/{journey_id}/events", event)

    async def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._control(journey_id, "pause", reason)

    async def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._control(journey_id, "resume", reason)

    async def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._control(journey_id, "cancel", reason)

    async def _control(self, journey_id: str, action: str, reason: str) -> JourneyState:
        return await self._call(
            JourneyState, "POST", f"/v1/journeys/{journey_id}/{action}", Control(reason=reason)
        )

    # -- templates -----------------------------------------------------------------------
    async def templates(self) -> list[TemplateSummary]:
        response = await self._http.get("/v1/templates")
        raise_for_problem(response)
        return _TEMPLATES.validate_json(response.content)

    async def template(self, template_id: str, version: int | None = None) -> TemplateDetail:
        return await self._call(
            TemplateDetail, "GET", f"/v1/templates/{template_id}", params=_query(version=version)
        )

    # -- patients (by your own patient id) -----------------------------------------------
    async def register_patient(self, patient_id: str, patient: PatientIn) -> PatientRegistered:
        """Create or update the patient record (fields left out keep their value)."""
        return await self._call(PatientRegistered, "PUT", _patient(patient_id), patient)

    async def patient(self, patient_id: str) -> PatientOut:
        return await self._call(PatientOut, "GET", _patient(patient_id))

    async def timeline(
        self, patient_id: str, *, since: datetime | None = None, limit: int = 200
    ) -> TimelineOut:
        params = _query(since=since.isoformat() if since else None, limit=limit)
        return await self._call(
            TimelineOut, "GET", f"{_patient(patient_id)}/timeline", params=params
        )

    async def consents(self, patient_id: str) -> ConsentsOut:
        return await self._call(ConsentsOut, "GET", f"{_patient(patient_id)}/consents")

    async def grant_consent(self, patient_id: str, grant: ConsentGrantIn) -> ConsentOut:
        return await self._call(ConsentOut, "POST", f"{_patient(patient_id)}/consents", grant)

    async def revoke_consents(self, patient_id: str, revoke: ConsentRevokeIn) -> ConsentRevokeOut:
        return await self._call(
            ConsentRevokeOut, "POST", f"{_patient(patient_id)}/consents/revoke", revoke
        )

    async def preferences(self, patient_id: str) -> PreferencesOut:
        return await self._call(PreferencesOut, "GET", f"{_patient(patient_id)}/preferences")

    async def set_preferences(self, patient_id: str, preferences: PreferencesPut) -> PreferencesOut:
        return await self._call(
            PreferencesOut, "PUT", f"{_patient(patient_id)}/preferences", preferences
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PitwallHttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
