"""The one place that POSTs to partners and maps failures onto our two exceptions.

- 2xx: returned to the caller.
- 408, 409 (idempotent request still in flight), 425, 429 and 5xx, timeouts, connection
  errors: `PartnerUnavailable` (retryable).
- any other status: `PartnerRejected` with a stable machine code from the partner's
  classifier (default: ``"{partner}.invalid_request"`` for 400/422, ``.auth_failed`` for
  401/403, ``.not_found`` for 404, ``.rejected`` otherwise).

Every request carries ``Idempotency-Key``; error details are built from status codes and
partner error codes only, never from response text (which may echo patient data).
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from adapters.errors import PartnerRejected, PartnerUnavailable

IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})

ErrorClassifier = Callable[[httpx.Response, Any], tuple[str | None, str]]
"""(response, parsed JSON body or None) -> (code or None for the default, detail)."""

_DEFAULT_CODES = {
    400: "invalid_request",
    422: "invalid_request",
    401: "auth_failed",
    403: "auth_failed",
    404: "not_found",
}


def default_code(partner: str, status: int) -> str:
    return f"{partner}.{_DEFAULT_CODES.get(status, 'rejected')}"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def classify_error_object(response: httpx.Response, body: Any) -> tuple[str | None, str]:
    """Generic JSON errors ``{"error": {"code", "field"}}``: default code, codes in detail."""
    detail = f"HTTP {response.status_code}"
    err = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(err, Mapping):
        if err.get("code"):
            detail += f"; error {err['code']}"
        if err.get("field"):
            detail += f" (field {err['field']})"
    return None, detail


class PartnerHttp:
    """A base URL, an httpx client (shared or owned) and the error mapping for one partner."""

    def __init__(
        self,
        partner: str,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        classify: ErrorClassifier | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.partner = partner
        self.base_url = base_url.rstrip("/")
        self._owned = http is None
        self._http = http or httpx.AsyncClient()
        self._timeout = timeout
        self._classify = classify
        self._auth = auth
        self._headers = dict(headers or {})

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def post(
        self,
        path: str,
        *,
        idempotency_key: str,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``base_url + path``; return a 2xx response or raise."""
        if not idempotency_key:
            raise ValueError("idempotency_key is required")
        all_headers = {**self._headers, **(headers or {}), IDEMPOTENCY_HEADER: idempotency_key}
        kwargs: dict[str, Any] = {"headers": all_headers, "timeout": self._timeout}
        if json is not None:
            kwargs["content"] = jsonlib.dumps(json).encode()
            all_headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            kwargs["data"] = dict(data)
        elif content is not None:
            kwargs["content"] = content
        return await self._request("POST", path, kwargs)

    async def patch(self, path: str, *, json: Any) -> httpx.Response:
        """PATCH ``base_url + path`` with a JSON body (an update that is the same each time)."""
        headers = {**self._headers, "Content-Type": "application/json"}
        kwargs: dict[str, Any] = {
            "headers": headers, "timeout": self._timeout, "content": jsonlib.dumps(json).encode(),
        }  # fmt: skip
        return await self._request("PATCH", path, kwargs)

    async def get(self, path: str, *, params: Mapping[str, str] | None = None) -> httpx.Response:
        """GET ``base_url + path`` (a path, or a partner-given ``/…`` page URI)."""
        kwargs: dict[str, Any] = {"headers": dict(self._headers), "timeout": self._timeout}
        if params is not None:
            kwargs["params"] = dict(params)
        return await self._request("GET", path, kwargs)

    async def _request(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        if self._auth is not None:
            kwargs["auth"] = self._auth
        try:
            response = await self._http.request(method, self.base_url + path, **kwargs)
        except httpx.TimeoutException as exc:
            raise PartnerUnavailable(self.partner, None, f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise PartnerUnavailable(
                self.partner, None, f"connection error: {type(exc).__name__}"
            ) from exc
        return self.check(response)

    def check(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise PartnerUnavailable(self.partner, status, f"HTTP {status}")
        code: str | None = None
        detail = f"HTTP {status}"
        if self._classify is not None:
            code, detail = self._classify(response, _json_or_none(response))
        raise PartnerRejected(
            self.partner, status, code or default_code(self.partner, status), detail
        )

    def json(self, response: httpx.Response) -> Any:
        """The JSON body of a 2xx answer; a malformed one counts as the partner failing."""
        body = _json_or_none(response)
        if body is None:
            raise PartnerUnavailable(
                self.partner, response.status_code, "malformed response: body is not JSON"
            )
        return body


class PartnerClient:
    """Base of the partner clients: each owns a PartnerHttp; close it, or use `async with`."""

    _http: PartnerHttp

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
