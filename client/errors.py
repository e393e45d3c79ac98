"""What the SDK raises when the API answers with a problem (RFC 9457)."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from contract.problems import Problem


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
