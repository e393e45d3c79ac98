"""RFC 9457 problem+json responses with stable `type`s; details never carry patient data."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_BASE = "https://pitwall.dev/problems/"


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + kind, "title": title, "status": status, **extra}
    if detail:
        body["detail"] = detail
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )
