"""Every failure the API answers becomes RFC 9457 problem+json with a stable `type`.

Nothing a caller sent is echoed back (it may be patient data), and nothing internal
leaks: an unexpected error is a 500 with an `error_id` to find it in the logs, which
hold the exception's class and where it happened, not its message.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import problem
from domain.template_loader import UnknownTemplate
from gateway.journeys import ControlRejected, JourneyClosed, JourneyNotFound
from gateway.visibility import UnsafeQueryValue
from services.errors import (
    InvalidField,
    JourneyRunsAnotherTemplate,
    NoContactAddress,
    PatientNotFound,
)
from store.patients import PatientErased

log = structlog.get_logger("api")

RETRY_AFTER_SECONDS = 5
# Temporal answers these when it is down, restarting, overloaded or slow: retry later.
_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
}


class ApiProblem(Exception):
    """Raise from a route to answer with a problem; `extra` members go into the body."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(title)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers = headers
        self.extra = extra

    def response(self) -> JSONResponse:
        return problem(
            self.status, self.kind, self.title, self.detail, headers=self.headers, **self.extra
        )


def invalid_field(field: str, message: str, kind: str) -> ApiProblem:
    """422 like a schema error: names the field, never echoes its value."""
    return ApiProblem(
        422, "invalid-request", "The request is not valid", f"invalid field(s): {field}",
        errors=[{"field": field, "message": message, "type": kind}],
    )  # fmt: skip


def unavailable() -> JSONResponse:
    return problem(
        503,
        "temporal-unavailable",
        "Journeys are unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def field_problems(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[dict[str, str]]:
    """pydantic errors → [{field, message, type}], leaving out the rejected input."""
    out = []
    for err in errors:
        where = [*prefix, *err.get("loc", ())]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(
            {
                "field": ".".join(str(p) for p in where) or "body",
                "message": message,
                "type": str(err.get("type", "invalid")),
            }
        )
    return out


def invalid_request(errors: list[dict[str, str]], detail: str = "") -> JSONResponse:
    return problem(
        422, "invalid-request", "The request is not valid", detail or _summary(errors),
        errors=errors,
    )  # fmt: skip


def _summary(errors: list[dict[str, str]]) -> str:
    fields = sorted({e["field"] for e in errors})
    return "invalid field(s): " + ", ".join(fields) if fields else ""


# -- handlers ----------------------------------------------------------------------------


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return exc.response()


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return invalid_request(field_problems(exc.errors()))


async def _model_validation(request: Request, exc: Exception) -> JSONResponse:
    # A domain model refused what the request carried (e.g. a template parameter).
    assert isinstance(exc, ValidationError)
    return invalid_request(field_problems(exc.errors(), ("body",)))


async def _unsafe_query(request: Request, exc: Exception) -> JSONResponse:
    return invalid_request([{"field": "query", "message": str(exc), "type": "unsafe_value"}])


async def _unknown_template(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownTemplate)
    known = sorted({template_id for template_id, _ in exc.known})
    return problem(
        422, "unknown-template", "No such template", str(exc), known_templates=known,
        errors=[{"field": "body.template", "message": str(exc), "type": "unknown_template"}],
    )  # fmt: skip


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem(404, "journey-not-found", "No journey with that id")


async def _closed(request: Request, exc: Exception) -> JSONResponse:
    return problem(409, "journey-finished", "The journey has finished", "It takes no more changes.")


async def _rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ControlRejected)
    # The validator's own words (no patient data), without the "ErrorType: " prefix.
    message = str(exc).removeprefix(f"{exc.error_type}: ")
    return problem(409, "invalid-state", "The journey is not in a state for that", message)


async def _rpc(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if exc.status in _UNAVAILABLE:
        log.warning("api.temporal_unavailable", status=exc.status.name)
        return unavailable()
    if exc.status == RPCStatusCode.INVALID_ARGUMENT and request.query_params.get("page_token"):
        return invalid_request(
            [{"field": "query.page_token", "message": "not a token this API gave out",
              "type": "invalid_page_token"}]
        )  # fmt: skip
    return _internal(request, exc)


async def _runtime(request: Request, exc: Exception) -> JSONResponse:
    # A lazy Temporal client that cannot connect says so with a RuntimeError.
    if "failed client connect" in str(exc).lower():
        log.warning("api.temporal_unreachable")
        return unavailable()
    return _internal(request, exc)


async def _update_timeout(request: Request, exc: Exception) -> JSONResponse:
    return unavailable()


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not even decode the body (e.g. not UTF-8)
        return invalid_request(
            [{"field": "body", "message": "could not be parsed", "type": "body_unparsable"}]
        )
    kinds = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}
    return problem(
        exc.status_code,
        kinds.get(exc.status_code, "http-error"),
        _title(exc.status_code),
        headers=dict(exc.headers or {}),
    )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _response_validation(request: Request, exc: Exception) -> JSONResponse:
    return _internal(request, exc)


def _internal(request: Request | None, exc: BaseException) -> JSONResponse:
    error_id = uuid.uuid4().hex[:16]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    route = getattr(request.scope.get("route"), "path", None) if request else None
    log.error(
        "api.unexpected_error", error_id=error_id, error=type(exc).__name__, where=where,
        route=route,
    )  # fmt: skip
    return problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; quote the error_id when reporting it.",
        error_id=error_id,
    )


class CatchAll:
    """Outermost guard: anything no handler took becomes a 500 problem, never a
    traceback (Starlette's own error middleware would re-raise after answering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                raise
            await _internal(Request(scope), exc)(scope, receive, send)


async def _patient_not_found(request: Request, exc: Exception) -> JSONResponse:
    return problem(404, "patient-not-found", "No patient with that id")


async def _patient_erased(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        409, "patient-erased", "The patient was forgotten",
        "Their personal data was erased (right to erasure); nothing can be added.",
    )  # fmt: skip


async def _invalid_patient(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidField)
    return invalid_field(exc.field, exc.message, exc.kind).response()


async def _no_contact_address(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        422, "no-contact-address", "No address on file for that channel",
        "Record the patient's contact detail first, or give `address`.",
        errors=[{"field": "body.address", "message": "required: nothing on file",
                 "type": "no_contact_address"}],
    )  # fmt: skip


async def _another_template(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JourneyRunsAnotherTemplate)
    return problem(
        409, "journey-exists", "This patient's journey for that key runs another template",
        str(exc), journey_id=exc.journey_id,
    )  # fmt: skip


def install(app: FastAPI) -> None:
    handlers: list[tuple[type[Exception], Any]] = [
        (ApiProblem, _api_problem),
        (RequestValidationError, _request_validation),
        (ResponseValidationError, _response_validation),
        (ValidationError, _model_validation),
        (UnsafeQueryValue, _unsafe_query),
        (UnknownTemplate, _unknown_template),
        (JourneyNotFound, _not_found),
        (JourneyClosed, _closed),
        (ControlRejected, _rejected),
        (PatientNotFound, _patient_not_found),
        (PatientErased, _patient_erased),
        (InvalidField, _invalid_patient),
        (NoContactAddress, _no_contact_address),
        (JourneyRunsAnotherTemplate, _another_template),
        (WorkflowUpdateRPCTimeoutOrCancelledError, _update_timeout),
        (RPCError, _rpc),
        (RuntimeError, _runtime),
        (StarletteHTTPException, _http),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(CatchAll)
