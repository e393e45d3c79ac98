"""A journey's event inbox: dedupe by event id, keep events until their wait comes.

Plain deterministic code shared by every JourneyRuntime (Temporal, the virtual one).
Bounded: an event id is remembered for SEEN_EVENTS_HORIZON_DAYS journey-days and at
most SEEN_EVENTS_KEPT ids are kept, newest first; a duplicate older than that is taken
as new. At most INBOX_KEPT events wait for a step, oldest dropped first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.journey import (
    INBOX_KEPT,
    SEEN_EVENTS_HORIZON_DAYS,
    SEEN_EVENTS_KEPT,
    JourneyState,
)
from domain.partners import PartnerEvent

# SMS delivery statuses can arrive out of order; a later status never goes backwards.
_STATUS_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3}
_TERMINAL = {"delivered", "undelivered", "failed"}


def status_wins(new: str, old: str | None) -> bool:
    if old is None:
        return True
    if old in _TERMINAL:
        return False
    if new in _TERMINAL:
        return True
    return _STATUS_RANK.get(new, 0) > _STATUS_RANK.get(old, 0)


class EventInbox:
    def __init__(
        self, events: list[PartnerEvent] | None = None, seen: dict[str, datetime] | None = None
    ) -> None:
        self.events: list[PartnerEvent] = list(events or [])
        self.seen: dict[str, datetime] = dict(seen or {})

    def receive(self, event: PartnerEvent, state: JourneyState, now: datetime) -> bool:
        """Keep an event for the wait it answers (or apply a status). False: a duplicate."""
        if event.event_id in self.seen:
            return False
        self.seen[event.event_id] = now
        self._forget_before(now - timedelta(days=SEEN_EVENTS_HORIZON_DAYS))
        if event.type == "sms.status":
            status = str(event.data.get("status", ""))
            if status_wins(status, state.message_status.get(event.correlation_key)):
                state.set_message_status(event.correlation_key, status)
            return True
        self.events.append(event)
        del self.events[:-INBOX_KEPT]
        return True

    def _forget_before(self, horizon: datetime) -> None:
        if len(self.seen) <= SEEN_EVENTS_KEPT:
            return
        for event_id, at in list(self.seen.items()):
            if len(self.seen) <= SEEN_EVENTS_KEPT // 2 or at >= horizon:
                break
            del self.seen[event_id]
        for event_id in list(self.seen)[: max(len(self.seen) - SEEN_EVENTS_KEPT, 0)]:
            del self.seen[event_id]

    def match(self, event_types: list[str], correlation_key: str) -> PartnerEvent | None:
        for event in self.events:
            if event.type in event_types and event.correlation_key == correlation_key:
                return event
        return None

    def take(self, event: PartnerEvent) -> None:
        self.events.remove(event)
