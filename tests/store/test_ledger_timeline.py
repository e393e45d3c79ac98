"""Contact ledger and timeline: one row per idempotency key, even under 20 concurrent writers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from store import Store
from store.ledger import ContactEvent, ContactLedger, ContactLedgerEntry, ContactPlan
from store.timeline import TimelineEntry, TimelineEvent, TimelineRepository, TimelineType
from tests.store.conftest import count as _count
from tests.store.conftest import together as _together

WRITERS = 20
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _plan(key: str = "journey/p/pt-dan/welcome/1", **overrides: object) -> ContactPlan:
    fields: dict[str, object] = {
        "idempotency_key": key,
        "patient_ref": "pt-dan",
        "journey_ref": "journey/p/pt-dan",
        "program": "p",
        "step_id": "welcome",
        "channel": "sms",
        "purpose": "treatment",
        "decided_at": T0,
    }
    return ContactPlan.model_validate({**fields, **overrides})


def _event(key: str, at: datetime, type_: str = "journey.milestone", **kw: object) -> TimelineEvent:
    fields: dict[str, object] = {
        "idempotency_key": key,
        "patient_ref": "pt-dan",
        "journey_ref": "journey/p/pt-dan",
        "type": type_,
        "occurred_at": at,
        "summary": "stage=PA_SUBMITTED",
    }
    return TimelineEvent.model_validate({**fields, **kw})


# -- ledger --------------------------------------------------------------------------------


def test_ledger_records_once_per_key(store: Store) -> None:
    first = store.ledger.record(_plan())
    again = store.ledger.record(_plan(status="suppressed", reason="other"))
    assert first.inserted and not again.inserted
    assert again.entry.id == first.entry.id and again.entry.status == "planned"
    assert [e.status for e in store.ledger.events(_plan().idempotency_key)] == ["planned"]


def test_ledger_transitions_are_guarded_and_kept(store: Store) -> None:
    key = _plan().idempotency_key
    store.ledger.record(_plan())
    assert store.ledger.transition(key, "deferred", reason="quiet_hours", defer_until=T0)
    assert not store.ledger.transition(key, "planned")  # a deferral is decided again, not undone
    assert store.ledger.transition(key, "sending", at=T0)
    assert store.ledger.transition(key, "sent", provider_message_id="SM1")
    assert not store.ledger.transition(key, "sent")  # a retry: nothing new
    assert store.ledger.transition(key, "delivered")
    assert not store.ledger.transition(key, "failed")  # late, out of order
    assert not store.ledger.transition("no-such-key", "sent")
    entry = store.ledger.get(key)
    assert entry is not None
    # Caps count a contact from the moment it went to the gateway.
    assert (entry.status, entry.provider_message_id, entry.sent_at) == ("delivered", "SM1", T0)
    assert [(e.status, e.reason) for e in store.ledger.events(key)] == [
        ("planned", None),
        ("deferred", "quiet_hours"),
        ("sending", None),
        ("sent", None),
        ("delivered", None),
    ]
    assert store.ledger.by_provider_message_id("SM1") == entry


def test_suppressed_with_reason_is_terminal(store: Store) -> None:
    recorded = store.ledger.record(_plan(status="suppressed", reason="no_consent"))
    assert recorded.entry.reason == "no_consent"
    assert not store.ledger.transition(recorded.entry.idempotency_key, "sent")


def test_same_content_for_the_same_reason_is_never_sent_twice(store: Store) -> None:
    """A dedupe key (content + reason) is unique per patient, across journeys."""
    one = store.ledger.record(_plan("j1/refill/1", dedupe_key="refill-reminder:2026-03"))
    two = store.ledger.record(
        _plan("j2/refill/1", journey_ref="journey/q/pt-dan", dedupe_key="refill-reminder:2026-03")
    )
    assert one.inserted and not two.inserted
    assert two.entry.idempotency_key == "j1/refill/1"


def test_what_was_this_patient_told_this_week_across_programs(store: Store) -> None:
    for i, (program, days_ago) in enumerate([("p", 1), ("q", 2), ("p", 9)]):
        at = T0 - timedelta(days=days_ago)
        store.ledger.record(_plan(f"k{i}", program=program, status="sent", decided_at=at))
    store.ledger.record(_plan("k-sup", status="suppressed", reason="opted_out"))
    week = store.ledger.for_patient("pt-dan", since=T0 - timedelta(days=7))
    assert [(e.program, e.status) for e in week] == [
        ("q", "sent"),
        ("p", "sent"),
        ("p", "suppressed"),
    ]
    since = T0 - timedelta(days=7)
    assert store.ledger.count_contacted("pt-dan", since=since, channel="sms") == 2
    assert store.ledger.count_contacted("pt-dan", since=since, channel="email") == 0


def test_twenty_concurrent_ledger_writers_make_one_row(engine: Engine, database_url: str) -> None:
    results = _together(database_url, WRITERS, lambda e: ContactLedger(e).record(_plan()).inserted)
    assert sorted(results) == [False] * (WRITERS - 1) + [True]
    assert _count(engine, ContactLedgerEntry) == 1
    assert _count(engine, ContactEvent) == 1


def test_twenty_concurrent_transitions_apply_once(engine: Engine, database_url: str) -> None:
    ContactLedger(engine).record(_plan())
    key = _plan().idempotency_key
    results = _together(database_url, WRITERS, lambda e: ContactLedger(e).transition(key, "sent"))
    assert results.count(True) == 1
    assert _count(engine, ContactEvent, status="sent") == 1


# -- timeline ------------------------------------------------------------------------------


def test_timeline_record_is_idempotent_and_ordered(store: Store) -> None:
    assert store.timeline.record(_event("e2", T0 + timedelta(hours=2), "partner.callback"))
    assert store.timeline.record(_event("e1", T0, "partner.call"))
    assert store.timeline.record(_event("e1b", T0, "message.sent"))  # same time: recorded order
    assert not store.timeline.record(_event("e1", T0, "partner.call", summary="replayed"))
    other = _event("x1", T0, journey_ref="journey/q/pt-dan", type="task.opened")
    assert store.timeline.record(other)
    entries = store.timeline.for_patient("pt-dan")
    assert [e.idempotency_key for e in entries] == ["e1", "e1b", "x1", "e2"]
    assert entries[0].occurred_at == T0 and entries[0].summary == "stage=PA_SUBMITTED"
    journey = store.timeline.for_patient("pt-dan", journey_ref="journey/p/pt-dan")
    assert [e.idempotency_key for e in journey] == ["e1", "e1b", "e2"]
    assert [e.idempotency_key for e in store.timeline.for_journey("journey/q/pt-dan")] == ["x1"]
    assert store.timeline.counts("pt-dan") == {
        "partner.call": 1,
        "partner.callback": 1,
        "message.sent": 1,
        "task.opened": 1,
    }


def test_timeline_accepts_a_note_shaped_model(store: Store) -> None:
    from pydantic import BaseModel

    class Note(BaseModel):  # the shape of domain.timeline.TimelineNote
        idempotency_key: str
        journey_id: str
        patient_ref: str
        type: str
        occurred_at: datetime
        summary: str
        correlation: dict[str, object]

    note = Note(
        idempotency_key="n1",
        journey_id="journey/p/pt-dan",
        patient_ref="pt-dan",
        type=TimelineType.TASK_OPENED,
        occurred_at=T0,
        summary="task=delivery_followup-1",
        correlation={"task_id": "delivery_followup-1", "visit": 1},
    )
    assert store.timeline.record(note)
    (entry,) = store.timeline.for_journey("journey/p/pt-dan")
    assert entry.correlation == {"task_id": "delivery_followup-1", "visit": 1}


def test_timeline_rejects_bad_types_and_clips_summaries() -> None:
    with pytest.raises(ValidationError):
        _event("bad", T0, "Not A Type")
    assert len(_event("long", T0, summary="x" * 500).summary) == 200


def test_twenty_concurrent_timeline_writers_make_one_entry(
    engine: Engine, database_url: str
) -> None:
    results = _together(
        database_url, WRITERS, lambda e: TimelineRepository(e).record(_event("same", T0))
    )
    assert results.count(True) == 1
    assert _count(engine, TimelineEntry) == 1
