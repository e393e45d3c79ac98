"""The small interface the template interpreter runs against.

`TemporalRuntime` (workflows/temporal_runtime.py) implements it inside a workflow;
`VirtualRuntime` (simulate/runtime.py) on a virtual clock, with no server: the fast
interpreter tests and the cohort simulator. Steps never touch Temporal.
"""

from __future__ import annotations

from datetime import datetime
from random import Random
from typing import Any, Protocol

from domain.actions import (
    ContactOutcome,
    ContactRequest,
    MessageOutcome,
    OutboundMessage,
    PartnerCall,
    TaskChange,
)
from domain.journey import Frame, JourneyState
from domain.partners import PartnerEvent


class JourneyCancelled(Exception):
    """Raised out of any wait when an operator cancels the journey."""


class ActionFailed(Exception):
    """A partner action failed for good (rejected, or retries exhausted)."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message or error_type)
        self.error_type = error_type


class SwitchRun(Exception):
    """At a step boundary: the journey should go on in a fresh run (continue-as-new).

    `frames` says where, outermost first; each container step adds itself on the way out.
    """

    def __init__(self, frames: list[Frame]) -> None:
        super().__init__("continue as new")
        self.frames = frames


class JourneyRuntime(Protocol):
    def now(self) -> datetime:
        """Journey time (scaled by the journey's time scale)."""
        ...

    def random(self) -> Random: ...

    def patched(self, change: str) -> bool:
        """True unless replaying a journey recorded before `change` (workflow.patched)."""
        ...

    async def checkpoint(self) -> None:
        """Between steps: wait while paused; raise JourneyCancelled if cancelled."""
        ...

    def switch_due(self) -> bool:
        """At a step boundary: should the journey continue in a fresh run now?"""
        ...

    async def partner_action(self, call: PartnerCall) -> dict[str, Any]:
        """Run a partner action; raises ActionFailed."""
        ...

    async def send_message(self, message: OutboundMessage) -> MessageOutcome: ...

    async def contact(self, request: ContactRequest) -> ContactOutcome:
        """One try at a contact through the contact policy (send, defer or suppress)."""
        ...

    async def task_changed(self, change: TaskChange) -> None:
        """Keep the task queue in step with a human task of this journey."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Sleep until a journey time; raises JourneyCancelled."""
        ...

    async def wait_for_event(
        self, event_types: list[str], correlation_key: str, deadline: datetime | None
    ) -> PartnerEvent | None:
        """The first matching event (also one that arrived earlier), or None at the deadline."""
        ...

    def take_event(self, event_types: list[str], correlation_key: str) -> PartnerEvent | None:
        """A matching event that has already arrived, taken; None: none yet (no wait)."""
        ...

    def publish(self, state: JourneyState) -> None:
        """The state changed: surface it (UI summary, search attributes)."""
        ...

    def note(self, kind: str, key: str, summary: str, **correlation: Any) -> None:
        """Put an entry on the patient's timeline (durably, in the background).

        `key` makes the entry unique within the journey, so replays never double it.
        """
        ...
