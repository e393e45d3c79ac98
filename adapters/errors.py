"""Errors adapters raise; activities map them onto Temporal retry semantics.

Messages and `detail` never carry patient data: they are built from HTTP status codes,
partner error codes and field names only, never from partner free text or echoed input.
"""

from __future__ import annotations


class PartnerRejected(Exception):
    """The partner refused the request (4xx, invalid request): retrying will not help."""

    def __init__(self, partner: str, status: int, code: str, detail: str = "") -> None:
        self.partner = partner
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(f"{partner} rejected the request: HTTP {status} {code}: {detail}")


class PartnerUnavailable(Exception):
    """The partner could not answer now (5xx, 429, timeout, connection error): retry."""

    def __init__(self, partner: str, status: int | None, detail: str = "") -> None:
        self.partner = partner
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{partner} unavailable ({where}): {detail}")


class CallbackInvalid(ValueError):
    """An inbound partner callback is malformed; the message names the problem only."""
