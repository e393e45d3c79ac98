"""What a gateway's receipt says about a message: delivered, failed, or not yet known."""

from __future__ import annotations

from typing import Any, Literal

Settled = Literal["delivered", "failed"]

# SMS (Twilio MessageStatus) and email (the parser's terminal delivered / failed).
RECEIPT_STATUS: dict[str, Settled] = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}
# A call: answered or left as voicemail reached the patient; the rest did not.
CALL_OUTCOME: dict[str, Settled] = {
    "answered": "delivered",
    "voicemail": "delivered",
    "no_answer": "failed",
    "failed": "failed",
}
RECEIPT_TYPES = frozenset({"sms.status", "email.event", "voice.status"})


def settled_status(event_type: str, data: dict[str, Any]) -> Settled | None:
    """None while the message is still in flight (queued, sent, ringing...)."""
    if event_type == "voice.status":
        return CALL_OUTCOME.get(str(data.get("outcome") or ""))
    return RECEIPT_STATUS.get(str(data.get("status") or data.get("terminal") or ""))
