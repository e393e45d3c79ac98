"""The send-time gate: the policy's inputs read from the store, its decision recorded in
the same transaction, under the patient's lock (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Engine

from store import Store
from store.consents import PreferenceChange
from store.contact_gate import ContactAttempt, ContactGate, Decided
from store.ledger import ContactLedgerEntry
from store.patients import PatientDetails
from tests.store.conftest import count, together

PROGRAM = "gate-program"
PHONE = "+13125550142"  # Chicago: the zone comes from the number when the record has none
# 15:00 UTC is 09:00 in Chicago (CST): inside the default 08:00-20:00 window.
MORNING = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def patient(store: Store, ref: str = "pt-gate", *, timezone: str | None = None) -> str:
    store.patients.upsert(ref, PatientDetails(phone=PHONE, email=f"{ref}@example.com",
                                              timezone=timezone))  # fmt: skip
    for purpose in ("treatment", "adherence"):
        store.directory.grant_consent(ref, "sms", purpose, PROGRAM)
    return ref


def attempt(ref: str, key: str, at: datetime = MORNING, **changes: object) -> ContactAttempt:
    values: dict[str, object] = {
        "idempotency_key": key, "patient_ref": ref, "journey_ref": f"journey/{PROGRAM}/{ref}",
        "program": PROGRAM, "step_id": key.rsplit("/", 1)[-1], "content_ref": "welcome@1",
        "purpose": "treatment", "message_class": "operational", "channels": ("sms",),
        "exclude": (), "dedupe_key": f"welcome@1:{key}", "attempt": 0, "at": at,
    }  # fmt: skip
    return ContactAttempt(**{**values, **changes})  # type: ignore[arg-type]


def test_a_send_is_recorded_as_sending_before_the_gateway_is_called(store: Store) -> None:
    ref = patient(store)
    decided = ContactGate(store.engine).decide(attempt(ref, "j/welcome"))
    assert decided.fresh and decided.decision is not None
    assert (decided.decision.action, decided.decision.channel) == ("send", "sms")
    assert decided.recipient is not None and decided.recipient.address == PHONE
    assert (decided.entry.status, decided.entry.sent_at) == ("sending", MORNING)
    # A retried activity finds the decision made: it never decides twice.
    again = ContactGate(store.engine).decide(attempt(ref, "j/welcome"))
    assert not again.fresh and again.entry.status == "sending" and again.decision is None


def test_a_text_due_at_21_30_local_waits_for_08_00_and_then_goes(store: Store) -> None:
    ref = patient(store, timezone="America/Los_Angeles")
    evening = datetime(2026, 12, 2, 21, 30, tzinfo=UTC) + timedelta(hours=8)  # 21:30 PST
    gate = ContactGate(store.engine)
    deferred = gate.decide(attempt(ref, "j/welcome", at=evening))
    assert (deferred.entry.status, deferred.entry.reason) == ("deferred", "quiet_hours")
    eight_am = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # 08:00 PST
    assert deferred.entry.defer_until == eight_am
    notes = [e.summary for e in store.timeline.for_patient(ref) if e.type == "message.deferred"]
    assert notes == ["sms deferred until 2026-12-03 16:00Z: quiet_hours"]
    sent = gate.decide(attempt(ref, "j/welcome", at=eight_am))
    assert sent.fresh and sent.entry.status == "sending"
    history = [e.status for e in store.ledger.events("j/welcome")]
    assert history == ["deferred", "sending"]


def test_the_patients_own_quiet_hours_are_kept(store: Store) -> None:
    """Stored as the patient said it: quiet from 07:00 until 10:00 (Chicago)."""
    ref = patient(store)
    store.preferences.change(
        ref, PreferenceChange(quiet_hours_start=time(7), quiet_hours_end=time(10))
    )
    # 09:00 Chicago is inside the default window but inside their quiet hours: wait to 10:00.
    decided = ContactGate(store.engine).decide(attempt(ref, "j/welcome"))
    assert decided.entry.status == "deferred"
    assert decided.entry.defer_until == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def test_an_opt_out_suppresses_and_the_ledger_says_why(store: Store) -> None:
    ref = patient(store)
    store.changes.opt_out(ref, "sms_reply", "SM-stop")
    decided = ContactGate(store.engine).decide(attempt(ref, "j/welcome"))
    assert (decided.entry.status, decided.entry.reason) == ("suppressed", "opted_out")


def test_a_landline_number_is_not_texted(store: Store) -> None:
    ref = patient(store)
    store.directory.grant_consent(ref, "email", "treatment", PROGRAM)
    store.reachability.mark(ref, "sms", PHONE, "landline")
    decided = ContactGate(store.engine).decide(attempt(ref, "j/welcome", channels=("sms", "email")))
    assert decided.decision is not None and decided.decision.channel == "email"


def test_two_journeys_of_one_patient_racing_get_at_most_the_cap(
    store: Store, engine: Engine, database_url: str
) -> None:
    """Eight journeys of one patient decide an adherence text at the same instant, each
    on its own connection: the daily cap (1) lets exactly one through; the others wait."""
    ref = patient(store)

    def decide(i: int) -> Decided:
        return ContactGate(engine).decide(
            attempt(ref, f"journey-{i}/reminder", purpose="adherence",
                    content_ref="refill_reminder@1", dedupe_key=f"refill@1:{i}")
        )  # fmt: skip

    numbers = iter(range(8))
    results = together(database_url, 8, lambda e: decide(next(numbers)))
    statuses = sorted(r.entry.status for r in results)
    assert statuses == ["deferred"] * 7 + ["sending"], statuses
    assert {r.entry.reason for r in results if r.entry.status == "deferred"} == {"frequency_cap"}
    assert count(engine, ContactLedgerEntry, patient_ref=ref, status="sending") == 1
