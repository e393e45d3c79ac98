"""The simulator's ContactBook decides as the store's gate does: the same requests, one
after another, through both; every decision (status, channel, until, reason) the same.
That is what lets a simulated cohort count the contact policy's deferrals and
suppressions as production would (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from activities.messaging import MessagingActivities
from domain.actions import ContactOutcome, ContactRequest
from simulate.contacts import ContactBook, Recipient
from store import Store
from store.contact_gate import ContactGate, _consents, _patient_facts, _preferences
from store.db import session
from store.patients import PatientDetails

PROGRAM = "book-program"
PHONE = "+13125550142"  # Chicago
MORNING = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 09:00 CST


def request(journey: str, step: str, at: datetime, **changes: Any) -> ContactRequest:
    values: dict[str, Any] = {
        "journey_ref": f"journey/{PROGRAM}/pt-book/{journey}", "patient_ref": "pt-book",
        "program": PROGRAM, "step_id": step, "idempotency_key": f"{journey}/{step}/1",
        "content": "refill_reminder@1", "purpose": "adherence",
        "message_class": "operational", "channels": ["sms", "email"],
        "reason": f"{journey}/{step}", "at": at,
    }  # fmt: skip
    return ContactRequest(**{**values, **changes})


def as_gate_answers(store: Store, gate: ContactGate, req: ContactRequest) -> tuple[Any, ...]:
    activities = MessagingActivities.__new__(MessagingActivities)  # only _attempt is used
    entry = gate.decide(MessagingActivities._attempt(activities, req)).entry
    shown = {"sending": "sent"}.get(entry.status, entry.status)
    until = entry.defer_until if entry.status == "deferred" else None
    return shown, entry.channel, until, entry.reason


def as_book_answers(outcome: ContactOutcome) -> tuple[Any, ...]:
    return outcome.status, outcome.channel, outcome.until, outcome.reason


def test_the_book_decides_every_request_as_the_gate_does(store: Store) -> None:
    store.patients.upsert("pt-book", PatientDetails(phone=PHONE, email="pt-book@example.com"))
    for purpose in ("treatment", "adherence"):
        store.directory.grant_consent("pt-book", "sms", purpose, PROGRAM)
    with session(store.engine) as s:  # the same inputs: what the store holds
        patient = store.patients.get("pt-book")
        book = ContactBook()
        facts = _patient_facts(s, patient, "pt-book")
        book.add("pt-book", Recipient(facts, _consents(s, "pt-book"), _preferences(s, "pt-book")))
    gate = ContactGate(store.engine)
    evening = MORNING + timedelta(hours=12, minutes=30)  # 21:30 CST
    script = [
        request("j1", "welcome", MORNING, content="welcome@1", purpose="treatment"),
        request("j1", "welcome", MORNING, content="welcome@1", purpose="treatment"),  # retry
        request(
            "j2", "welcome", MORNING, content="welcome@1", purpose="treatment", reason="j1/welcome"
        ),
        request("j1", "refill", MORNING + timedelta(minutes=5)),
        request("j3", "refill", MORNING + timedelta(hours=1)),  # over the sms cap today
        request(
            "j4",
            "on_therapy",
            evening + timedelta(days=1),
            content="on_therapy@1",
            purpose="treatment",
        ),  # quiet hours (the next evening: no cap in the way)
        # A fallback while the first try still counts as sent (no receipt yet).
        request("j1", "refill", MORNING + timedelta(hours=2), attempt=1, exclude=["sms"]),
        request("j5", "refill", MORNING + timedelta(days=2), channels=["sms", "task"]),
        request(
            "j6",
            "safety",
            evening,
            content="safety_notice@1",
            purpose="treatment",
            message_class="safety",
        ),
    ]
    answers = [(as_gate_answers(store, gate, r), as_book_answers(book.decide(r))) for r in script]
    gate_said = [a for a, _ in answers]
    assert [b for _, b in answers] == gate_said
    # The script reaches the rules it means to (so the equality says something).
    assert {a[0] for a in gate_said} == {"sent", "deferred", "suppressed"}
    assert {a[3] for a in gate_said} >= {"duplicate_content", "quiet_hours"}

    store.changes.opt_out("pt-book", "sms_reply", "msg-1")
    book.opt_out("pt-book")
    after = request("j7", "refill", MORNING + timedelta(days=3))
    assert as_book_answers(book.decide(after)) == as_gate_answers(store, gate, after)
    assert as_book_answers(book.decide(after))[3] == "opted_out"
