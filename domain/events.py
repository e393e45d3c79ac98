"""Event types, declared once: what a journey can be told and a template can wait for.

- partner callbacks: from the partner-action registry (`pa.decided`, `pharmacy.*` ...)
  and the messaging gateways (`sms.status`, `sms.reply`, `email.event`);
- people: `task.completed` (a human task done), `operator.retry` (go on after a hold),
  `operator.note`;
- program events a template declares under `events:` (e.g. `patient.first_dose_confirmed`).

A wait on an undeclared type fails template validation with a did-you-mean; the HTTP
events endpoint accepts exactly the declared types.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from domain.partner_actions import callback_events

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")

TASK_COMPLETED = "task.completed"
OPERATOR_RETRY = "operator.retry"
OPERATOR_NOTE = "operator.note"
# The contact policy tells a journey what it waits on inside a message step.
MESSAGE_RECEIPT = "message.receipt"
CONTACT_CHANGED = "contact.changed"

MESSAGING_EVENTS = {
    "sms.status": "sms",
    "sms.reply": "sms",
    "email.event": "email",
}
PEOPLE_EVENTS = {
    TASK_COMPLETED: "A human task is done (correlation: the task id).",
    OPERATOR_RETRY: "Go on after a hold (correlation: the held step id).",
    OPERATOR_NOTE: "A note from an operator.",
}
CONTACT_EVENTS = {
    MESSAGE_RECEIPT: "A message awaiting its receipt settled (correlation: the gateway's id).",
    CONTACT_CHANGED: "The patient opted out or back in (correlation: the patient ref).",
}


def partner_events() -> dict[str, str]:
    """Callback event type → partner."""
    return {**callback_events(), **MESSAGING_EVENTS}


def core_event_types() -> set[str]:
    """Every type any journey understands, whatever its template."""
    return set(partner_events()) | set(PEOPLE_EVENTS) | set(CONTACT_EVENTS)


def declared_event_types(program_events: Iterable[str] = ()) -> set[str]:
    return core_event_types() | set(program_events)


def did_you_mean(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
