"""The event inbox stays bounded over years, and dedupes within its documented horizon."""

from __future__ import annotations

from datetime import timedelta

from domain.journey import INBOX_KEPT, SEEN_EVENTS_KEPT, JourneyState
from tests.interpreter.conftest import T0, event
from workflows.inbox import EventInbox


def test_seen_ids_stay_bounded_and_recent_duplicates_are_still_caught() -> None:
    inbox, state = EventInbox(), JourneyState(journey_id="j", template_id="t", template_version=1)
    for i in range(3 * SEEN_EVENTS_KEPT):  # one an hour for 250 days
        assert inbox.receive(event("sms.status", f"SM{i}", f"e{i}", status="sent"),
                             state, T0 + timedelta(hours=i))  # fmt: skip
        assert len(inbox.seen) <= SEEN_EVENTS_KEPT
    now = T0 + timedelta(hours=3 * SEEN_EVENTS_KEPT)
    recent = 3 * SEEN_EVENTS_KEPT - 1
    assert not inbox.receive(event("sms.status", "x", f"e{recent}"), state, now)  # duplicate
    assert inbox.receive(event("sms.status", "x", "e0"), state, now)  # long forgotten: new
    assert len(state.message_status) <= 100  # statuses are bounded too


def test_events_no_step_takes_are_kept_up_to_a_bound() -> None:
    inbox, state = EventInbox(), JourneyState(journey_id="j", template_id="t", template_version=1)
    for i in range(INBOX_KEPT + 50):
        inbox.receive(event("operator.note", "n", f"n{i}"), state, T0)
    assert len(inbox.events) == INBOX_KEPT
    assert inbox.events[0].event_id == "n50"  # the oldest went first
    assert inbox.match(["operator.note"], "n") is inbox.events[0]
