"""API keys on every /v1 route: `Authorization: Bearer <key>` (or `X-API-Key: <key>`).

    @router.get("", dependencies=[require("journeys:read")])
    async def route(key: Annotated[ApiKey, require("patients:write")]) -> ...

No key, a malformed, unknown or revoked one → 401 `unauthenticated` with
`WWW-Authenticate: Bearer`; a good key without the scope → 403 `forbidden` naming the
scope. `admin` implies every scope. Authentication runs before the request is validated,
so a caller without a key learns nothing about the request, not even that it was invalid.
Keys are stored hashed (store/api_keys.py); the presented key is never logged.

Scopes per route (the OpenAPI document lists them too):

- journeys:write  POST /v1/journeys, POST .../events, .../pause, .../resume, .../cancel,
                  PATCH .../preferences
- journeys:read   GET /v1/journeys, GET /v1/journeys/{id}, GET /v1/templates[/{id}]
- patients:read   GET /v1/patients/{ref}[/timeline | /consents | /preferences]
- patients:write  POST /v1/patients/{ref}/consents[/revoke], PUT .../preferences
- tasks:read      GET /v1/tasks, GET /v1/tasks/{id}
- tasks:write     POST /v1/tasks/{id}/assign, /reassign, /complete
- webhooks:{partner}  POST /v1/webhooks/{partner} (if PITWALL_RECEIVER_REQUIRE_WEBHOOK_KEYS)
- none            /healthz, /openapi.json, /docs
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Annotated, Any, cast

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiProblem
from store.api_keys import SCOPES, ApiKey, ApiKeyRepository, parse

log = structlog.get_logger("api")

API_KEY_HEADER = "X-API-Key"
REALM = "pitwall"
BEARER_SCHEME = "bearerAuth"
HEADER_SCHEME = "apiKeyHeader"
BASIC_SCHEME = "basicAuth"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    description="An API key: `Authorization: Bearer pw_<id>_<secret>`.",
)
_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name=HEADER_SCHEME,
    description="The same API key in `X-API-Key` (for tools that cannot set Authorization).",
)


def api_keys(request: Request) -> ApiKeyRepository:
    return cast(ApiKeyRepository, request.app.state.api_keys)


def unauthenticated(challenge: str = "Bearer") -> ApiProblem:
    return ApiProblem(
        401, "unauthenticated", "A valid API key is required",
        "Send `Authorization: Bearer <key>` or `X-API-Key: <key>`; the key may be missing, "
        "unknown or revoked.",
        headers={"WWW-Authenticate": f'{challenge} realm="{REALM}"'},
    )  # fmt: skip


def forbidden(scope: str) -> ApiProblem:
    return ApiProblem(
        403, "forbidden", "The API key lacks the scope for this",
        f"this operation needs the scope {scope} (or admin)", required_scope=scope,
    )  # fmt: skip


def basic_password(authorization: str) -> str | None:
    """The password of `Authorization: Basic ...` (the user name is ignored)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def presented_key(request: Request, *, allow_basic: bool = False) -> str | None:
    """The key a request carries: Bearer, X-API-Key, or (webhooks) a basic-auth password."""
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_basic and (password := basic_password(authorization)):
        return password
    return request.headers.get(API_KEY_HEADER) or None


async def authenticate(keys: ApiKeyRepository, presented: str | None, where: str) -> ApiKey:
    """The key, or 401. Never logs the key; at most its public id."""
    if not presented:
        log.info("api.auth_failed", reason="no_key", where=where)
        raise unauthenticated()
    key = keys.remembered(presented) or await asyncio.to_thread(keys.verify, presented)
    if key is None:
        parts = parse(presented)
        log.warning(
            "api.auth_failed", reason="invalid_key", where=where,
            key_id=parts[0] if parts else None,
        )  # fmt: skip
        raise unauthenticated()
    return key


def require(scope: str) -> Any:
    """A dependency (use in `dependencies=[...]` or `Annotated[ApiKey, require(...)]`)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    async def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> ApiKey:
        presented = bearer.credentials if bearer is not None else header
        key = await authenticate(api_keys(request), presented, request.url.path)
        if not key.allows(scope):
            log.warning("api.forbidden", key_id=key.key_id, scope=scope)
            raise forbidden(scope)
        request.state.api_key_id = key.key_id
        return key

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return Depends(check)
