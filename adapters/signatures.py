"""Inbound callback signatures.

Pitwall scheme (payer, pharmacy, consent, email callbacks): hex HMAC-SHA256 over
``f"{timestamp}.".encode() + body`` with the shared webhook secret, sent in
``X-Pitwall-Signature`` beside the unix-seconds ``X-Pitwall-Timestamp``.

Twilio scheme (SMS status and inbound callbacks): base64 HMAC-SHA1 with the account auth
token over the full callback URL followed by every POST parameter, sorted by name, as
name + value concatenated; sent in ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

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


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's X-Twilio-Signature for a form-encoded POST to ``url``."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """True when ``signature`` is Twilio's signature of this exact URL and form."""
    if not auth_token or not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
