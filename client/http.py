"""HTTP client for services (hub intake, EHR integration, CRM): the /v1 API, typed.

    async with PitwallHttpClient("https://pitwall.example", api_key=KEY) as pitwall:
        ack = await pitwall.start("specialty_start", patient_ref="pt-7f3a", program="p1")
        state = await pitwall.state(ack.journey_id)

    with SyncPitwallHttpClient("https://pitwall.example", api_key=KEY) as pitwall:
        pitwall.send_event(journey_id, event_id="crm-42", type="task.completed",
                           correlation_key="delivery_followup-1")

Answers are parsed into the API's own models (client/models.py, domain/journey.py).
`api_key` is sent as `Authorization: Bearer <key>` (`starter.py keys create`).
A problem+json answer raises a PitwallApiError subclass carrying the problem: 401
Unauthenticated, 403 Forbidden (`required_scope`), 404 NotFound, 409 Conflict, 422
InvalidRequest (with the fields), 503 Unavailable (with `retry_after`). Starting and
events are idempotent, so both are safe to retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from client.models import (
    JourneyPage,
    JourneySummary,
    Problem,
    TemplateDetail,
    TemplateSummary,
)
from domain.journey import EventAck, JourneyState, StartAck

T = TypeVar("T")
JsonScalar = str | int | float | bool | None
_TEMPLATES = TypeAdapter(list[TemplateSummary])


# -- errors -------------------------------------------------------------------------------


class PitwallApiError(Exception):
    """The API answered with a problem (RFC 9457)."""

    def __init__(self, status: int, problem: Problem | None, text: str = "") -> None:
        self.status = status
        self.problem = problem
        self.type = problem.type if problem else ""
        self.detail = problem.detail if problem else None
        title = problem.title if problem else text[:200]
        super().__init__(f"{status} {title}" + (f": {self.detail}" if self.detail else ""))


class Unauthenticated(PitwallApiError):
    """401: no API key, or one that is unknown or revoked."""


class Forbidden(PitwallApiError):
    """403: the API key lacks the scope for this call (`required_scope` names it)."""

    @property
    def required_scope(self) -> str | None:
        extra = self.problem.model_extra if self.problem else None
        return str(extra["required_scope"]) if extra and "required_scope" in extra else None


class NotFound(PitwallApiError):
    pass


class Conflict(PitwallApiError):
    """The journey is in the wrong state (e.g. paused twice) or has finished."""


class InvalidRequest(PitwallApiError):
    @property
    def fields(self) -> list[str]:
        return [e.field for e in (self.problem.errors or [])] if self.problem else []


class Unavailable(PitwallApiError):
    """Temporal is unavailable; retry after `retry_after` seconds."""

    def __init__(
        self, status: int, problem: Problem | None, text: str = "", retry_after: float = 5.0
    ) -> None:
        super().__init__(status, problem, text)
        self.retry_after = retry_after


_ERRORS: dict[int, type[PitwallApiError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem: Problem | None = Problem.model_validate_json(response.content)
    except ValidationError:
        problem = None
    if response.status_code == 503:
        try:
            retry_after = float(response.headers.get("retry-after", "5"))
        except ValueError:
            retry_after = 5.0
        raise Unavailable(503, problem, response.text, retry_after)
    raise _ERRORS.get(response.status_code, PitwallApiError)(
        response.status_code, problem, response.text
    )


# -- requests (shared by the async and the sync client) ------------------------------------


@dataclass
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def _model(model: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda response: model.model_validate_json(response.content)


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class _Calls:
    """What each operation sends and how its answer is read."""

    @staticmethod
    def start(
        template: str,
        patient_ref: str,
        program: str,
        business_key: str | None,
        template_version: int | None,
        params: dict[str, JsonScalar] | None,
        context: dict[str, JsonScalar] | None,
        time_scale: float | None,
    ) -> _Call[StartAck]:
        body = _body(
            template=template,
            template_version=template_version,
            patient_ref=patient_ref,
            program=program,
            business_key=business_key,
            params=params,
            context=context,
            time_scale=time_scale,
        )
        return _Call("POST", "/v1/journeys", _model(StartAck), json=body)

    @staticmethod
    def state(journey_id: str) -> _Call[JourneyState]:
        return _Call("GET", f"/v1/journeys/{journey_id}", _model(JourneyState))

    @staticmethod
    def find(
        patient: str | None,
        program: str | None,
        template: str | None,
        stage: str | None,
        needs_attention: bool | None,
        running: bool | None,
        page_size: int,
        page_token: str | None,
    ) -> _Call[JourneyPage]:
        params = _body(
            patient=patient,
            program=program,
            template=template,
            stage=stage,
            needs_attention=None if needs_attention is None else str(needs_attention).lower(),
            running=None if running is None else str(running).lower(),
            page_size=page_size,
            page_token=page_token,
        )
        return _Call("GET", "/v1/journeys", _model(JourneyPage), params=params)

    @staticmethod
    def event(
        journey_id: str,
        event_id: str,
        type: str,
        correlation_key: str,
        data: dict[str, JsonScalar] | None,
        occurred_at: datetime | None,
    ) -> _Call[EventAck]:
        body = _body(
            event_id=event_id,
            type=str(type),
            correlation_key=correlation_key,
            data=data,
            occurred_at=occurred_at.isoformat() if occurred_at else None,
        )
        return _Call("POST", f"/v1/journeys/{journey_id}/events", _model(EventAck), json=body)

    @staticmethod
    def control(
        journey_id: str, action: Literal["pause", "resume", "cancel"], reason: str
    ) -> _Call[JourneyState]:
        return _Call(
            "POST", f"/v1/journeys/{journey_id}/{action}", _model(JourneyState),
            json={"reason": reason},
        )  # fmt: skip

    @staticmethod
    def preferences(
        journey_id: str,
        channel: Literal["sms", "email"] | None,
        quiet_hours: tuple[str, str] | None,
        language: str | None,
        reason: str,
    ) -> _Call[JourneyState]:
        body = _body(
            channel=channel,
            quiet_hours={"start": quiet_hours[0], "end": quiet_hours[1]} if quiet_hours else None,
            language=language,
            reason=reason or None,
        )
        return _Call(
            "PATCH", f"/v1/journeys/{journey_id}/preferences", _model(JourneyState), json=body
        )

    @staticmethod
    def templates() -> _Call[list[TemplateSummary]]:
        return _Call("GET", "/v1/templates", lambda r: _TEMPLATES.validate_json(r.content))

    @staticmethod
    def template(template_id: str, version: int | None) -> _Call[TemplateDetail]:
        return _Call(
            "GET", f"/v1/templates/{template_id}", _model(TemplateDetail),
            params=_body(version=version),
        )  # fmt: skip


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"accept": "application/json, application/problem+json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


# -- async --------------------------------------------------------------------------------


class PitwallHttpClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def _send(self, call: _Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, json=call.json, params=call.params or None
        )
        raise_for_problem(response)
        return call.parse(response)

    async def start(
        self,
        template: str,
        *,
        patient_ref: str,
        program: str,
        business_key: str | None = None,
        template_version: int | None = None,
        params: dict[str, JsonScalar] | None = None,
        context: dict[str, JsonScalar] | None = None,
        time_scale: float | None = None,
    ) -> StartAck:
        """Start the journey or get the existing one (`created` tells which)."""
        return await self._send(
            _Calls.start(
                template,
                patient_ref,
                program,
                business_key,
                template_version,
                params,
                context,
                time_scale,
            )
        )

    async def state(self, journey_id: str) -> JourneyState:
        return await self._send(_Calls.state(journey_id))

    async def find(
        self,
        *,
        patient: str | None = None,
        program: str | None = None,
        template: str | None = None,
        stage: str | None = None,
        needs_attention: bool | None = None,
        running: bool | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> JourneyPage:
        """One page of journeys (visibility: eventually consistent)."""
        return await self._send(
            _Calls.find(
                patient, program, template, stage, needs_attention, running, page_size, page_token
            )
        )

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

    async def send_event(
        self,
        journey_id: str,
        *,
        event_id: str,
        type: str,
        correlation_key: str,
        data: dict[str, JsonScalar] | None = None,
        occurred_at: datetime | None = None,
    ) -> EventAck:
        return await self._send(
            _Calls.event(journey_id, event_id, type, correlation_key, data, occurred_at)
        )

    async def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._send(_Calls.control(journey_id, "pause", reason))

    async def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._send(_Calls.control(journey_id, "resume", reason))

    async def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._send(_Calls.control(journey_id, "cancel", reason))

    async def set_preferences(
        self,
        journey_id: str,
        *,
        channel: Literal["sms", "email"] | None = None,
        quiet_hours: tuple[str, str] | None = None,
        language: str | None = None,
        reason: str = "",
    ) -> JourneyState:
        """Change what is given; `quiet_hours` is (start, end) as HH:MM local time."""
        return await self._send(
            _Calls.preferences(journey_id, channel, quiet_hours, language, reason)
        )

    async def templates(self) -> list[TemplateSummary]:
        return await self._send(_Calls.templates())

    async def template(self, template_id: str, version: int | None = None) -> TemplateDetail:
        return await self._send(_Calls.template(template_id, version))

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


# -- sync ---------------------------------------------------------------------------------


class SyncPitwallHttpClient:
    """The same API, blocking (httpx.Client); same arguments, answers and errors."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def _send(self, call: _Call[T]) -> T:
        response = self._http.request(
            call.method, call.path, json=call.json, params=call.params or None
        )
        raise_for_problem(response)
        return call.parse(response)

    def start(
        self,
        template: str,
        *,
        patient_ref: str,
        program: str,
        business_key: str | None = None,
        template_version: int | None = None,
        params: dict[str, JsonScalar] | None = None,
        context: dict[str, JsonScalar] | None = None,
        time_scale: float | None = None,
    ) -> StartAck:
        return self._send(
            _Calls.start(
                template,
                patient_ref,
                program,
                business_key,
                template_version,
                params,
                context,
                time_scale,
            )
        )

    def state(self, journey_id: str) -> JourneyState:
        return self._send(_Calls.state(journey_id))

    def find(
        self,
        *,
        patient: str | None = None,
        program: str | None = None,
        template: str | None = None,
        stage: str | None = None,
        needs_attention: bool | None = None,
        running: bool | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> JourneyPage:
        return self._send(
            _Calls.find(
                patient, program, template, stage, needs_attention, running, page_size, page_token
            )
        )

    def iter_journeys(self, **filters: Any) -> Iterator[JourneySummary]:
        token: str | None = None
        while True:
            page = self.find(**filters, page_token=token)
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def send_event(
        self,
        journey_id: str,
        *,
        event_id: str,
        type: str,
        correlation_key: str,
        data: dict[str, JsonScalar] | None = None,
        occurred_at: datetime | None = None,
    ) -> EventAck:
        return self._send(
            _Calls.event(journey_id, event_id, type, correlation_key, data, occurred_at)
        )

    def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._send(_Calls.control(journey_id, "pause", reason))

    def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._send(_Calls.control(journey_id, "resume", reason))

    def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._send(_Calls.control(journey_id, "cancel", reason))

    def set_preferences(
        self,
        journey_id: str,
        *,
        channel: Literal["sms", "email"] | None = None,
        quiet_hours: tuple[str, str] | None = None,
        language: str | None = None,
        reason: str = "",
    ) -> JourneyState:
        return self._send(_Calls.preferences(journey_id, channel, quiet_hours, language, reason))

    def templates(self) -> list[TemplateSummary]:
        return self._send(_Calls.templates())

    def template(self, template_id: str, version: int | None = None) -> TemplateDetail:
        return self._send(_Calls.template(template_id, version))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncPitwallHttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
