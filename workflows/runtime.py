"""The small interface the template interpreter runs against.

`TemporalRuntime` (workflows/temporal_runtime.py) implements it inside a workflow; a
cohort simulator can implement it on a virtual clock. Steps never touch Temporal.
"""

from __future__ import annotations

from datetime import datetime
from random import Random
from typing import Any, Protocol

from domain.actions import MessageOutcome, OutboundMessage, PartnerCall
from domain.journey import JourneyState
from domain.partners import PartnerEvent


class JourneyCancelled(Exception):
    """Raised out of any wait when an operator cancels the journey."""


class ActionFailed(Exception):
    """A partner action failed for good (rejected, or retries exhausted)."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message or error_type)
        self.error_type = error_type


class JourneyRuntime(Protocol):
    def now(self) -> datetime:
        """Journey time (scaled by the journey's time scale)."""
        ...

    def random(self) -> Random: ...

    async def checkpoint(self) -> None:
        """Between steps: wait while paused; raise JourneyCancelled if cancelled."""
        ...

    async def partner_action(self, call: PartnerCall) -> dict[str, Any]:
        """Run a partner action; raises ActionFailed."""
        ...

    async def send_message(self, message: OutboundMessage) -> MessageOutcome: ...

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until a journey time; raises JourneyCancelled."""
        ...

    async def wait_for_event(
        self, event_types: list[str], correlation_key: str, deadline: datetime | None
    ) -> PartnerEvent | None:
        """The first matching event (also one that arrived earlier), or None at the deadline."""
        ...

    def publish(self, state: JourneyState) -> None:
        """The state changed: surface it (UI summary, search attributes)."""
        ...

    def note(self, kind: str, key: str, summary: str, **correlation: Any) -> None:
        """Put an entry on the patient's timeline (durably, in the background).

        `key` makes the entry unique within the journey, so replays never double it.
        """
        ...
