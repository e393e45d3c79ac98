"""Small helpers shared by the adapters' callback parsers (no patient data in messages)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from adapters.errors import CallbackInvalid


def load_json(body: bytes | str | Mapping[str, Any] | list[Any], what: str) -> Any:
    """Parse a callback body; Mapping / list inputs pass through (already parsed)."""
    if isinstance(body, Mapping | list):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallbackInvalid(f"{what}: body is not valid JSON") from exc


def validation_summary(exc: ValidationError, limit: int = 5) -> str:
    """Field locations and error types only: never the offending input values."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('type', 'invalid')}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 string, datetime or unix seconds → aware datetime; None when absent/invalid."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text), tz=UTC)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def now() -> datetime:
    return datetime.now(UTC)


def require_str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise CallbackInvalid(f"{what}: missing or empty field '{key}'")
    return value
