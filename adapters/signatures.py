"""Inbound callback signatures.

Pitwall scheme (payer, pharmacy, consent, email callbacks): hex HMAC-SHA256 over
``f"{timestamp}.".encode() + body`` with the shared webhook secret, sent in
``X-Pitwall-Signature`` beside the unix-seconds ``X-Pitwall-Timestamp``.

Twilio scheme (SMS status and inbound callbacks, voice status callbacks): base64
HMAC-SHA1 with the account auth token over the full callback URL followed by every POST
parameter, sorted by name, as name + value concatenated; sent in ``X-Twilio-Signature``.
Computed and checked by Twilio's reference implementation
(``twilio.request_validator.RequestValidator``), which also accepts the URL with or
without its default port, as Twilio signs either. The URL is the exact one requested,
without embedded basic-auth credentials: credentials in ``url`` are dropped first.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

TIMESTAMP_HEADER = "X-Pitwall-Timestamp"
SIGNATURE_HEADER = "X-Pitwall-Signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_TOLERANCE_S = 300


def sign_body(secret: str, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}."`` + body."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_body(
    secret: str,
    timestamp: int | str | None,
    body: bytes,
    signature: str | None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when the signature matches and the timestamp is within tolerance of now."""
    if not secret or timestamp is None or not signature:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    expected = sign_body(secret, str(timestamp).strip(), body)
    return hmac.compare_digest(expected, signature.strip().lower())


def _without_credentials(url: str) -> str:
    """``https://user:pass@host/p?q`` → ``https://host/p?q``: what Twilio signs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature for a form-encoded POST to ``url``."""
    validator = RequestValidator(auth_token)
    return str(validator.compute_signature(_without_credentials(url), dict(params)))


def verify_twilio(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when ``signature`` is Twilio's signature of this exact URL and form."""
    if not auth_token or not signature:
        return False
    validator = RequestValidator(auth_token)
    return bool(validator.validate(_without_credentials(url), dict(params), signature.strip()))
