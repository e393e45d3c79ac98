"""JourneyRuntime inside a Temporal workflow: activities, durable timers, an event inbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from random import Random
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from domain.actions import (
    ContactOutcome,
    ContactRequest,
    MessageOutcome,
    OutboundMessage,
    PartnerCall,
    TaskChange,
)
from domain.journey import JourneyMemory, JourneyState
from domain.partner_actions import PARTNER_UNAVAILABLE
from domain.partners import PartnerEvent
from domain.refill_cycle import RefillState
from domain.timeline import TimelineNote
from workflows import search_attributes as sa
from workflows.inbox import EventInbox
from workflows.runtime import ActionFailed, JourneyCancelled


# Partner 5xx and timeouts retry with backoff (1 s doubling to 30 s) up to the
# template's `partner_attempts`; then the journey is held for an operator. A rejection
# (4xx, validation) is non-retryable and reaches the template's on_error.
def partner_retry(attempts: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts,
    )


# Partner calls time out at 10 s; a dead worker's call is retried elsewhere after this.
ACTIVITY_TIMEOUT = timedelta(seconds=15)
TIMELINE_PATCH = "timeline-v1"
CONTINUE_AS_NEW_PATCH = "continue-as-new-v1"
# A paused journey is indexed as stage ON_HOLD (DOMAIN.md §2: any state → ON_HOLD), so
# operators filter it in the Temporal UI; its own stage comes back on resume.
ON_HOLD_PATCH = "on-hold-stage-v1"
ON_HOLD = "ON_HOLD"
T = TypeVar("T")


async def _activity(name: str, arg: Any, result_type: type[T], summary: str, attempts: int) -> T:
    """Run a side effect; a failure for good becomes ActionFailed with the error's type."""
    try:
        return await workflow.execute_activity(
            name,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=partner_retry(attempts),
            result_type=result_type,
            summary=summary,
        )
    except ActivityError as err:
        cause = err.cause
        error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else None
        if isinstance(cause, TemporalTimeoutError):
            error_type = PARTNER_UNAVAILABLE
        raise ActionFailed(error_type or PARTNER_UNAVAILABLE, str(cause)) from err


class TemporalRuntime:
    def __init__(
        self,
        state: JourneyState,
        time_scale: float,
        patient_ref: str,
        partner_attempts: int,
        memory: JourneyMemory | None = None,
    ) -> None:
        self.state = state
        self.patient_ref = patient_ref
        self.time_scale = time_scale
        self.partner_attempts = partner_attempts
        self._origin = memory.clock_origin if memory else workflow.now()
        self.inbox = EventInbox(memory.inbox, memory.seen) if memory else EventInbox()
        self.cancel_reason: str | None = memory.cancel_reason if memory else None
        self._published: dict[str, Any] = {}
        self._notes: list[TimelineNote] = []
        self._timeline = False
        self._closing = False

    # -- clock -------------------------------------------------------------------
    def now(self) -> datetime:
        elapsed = workflow.now() - self._origin
        return self._origin + elapsed * self.time_scale

    def _real(self, journey_delta: timedelta) -> float:
        return max(journey_delta.total_seconds() / self.time_scale, 0.0)

    def random(self) -> Random:
        return workflow.random()

    def patched(self, change: str) -> bool:
        return workflow.patched(change)

    @property
    def clock_origin(self) -> datetime:
        return self._origin

    # -- control -----------------------------------------------------------------
    async def checkpoint(self) -> None:
        await workflow.wait_condition(
            lambda: self.state.status != "paused" or self.cancel_reason is not None
        )
        self._raise_if_cancelled()

    def switch_due(self) -> bool:
        """Temporal suggests continue-as-new (history long or large): go on in a new run.

        Journeys recorded before continue-as-new existed never switch on replay (patched).
        """
        return workflow.info().is_continue_as_new_suggested() and workflow.patched(
            CONTINUE_AS_NEW_PATCH
        )

    def _raise_if_cancelled(self) -> None:
        if self.cancel_reason is not None:
            raise JourneyCancelled(self.cancel_reason)

    async def _until(self, condition: Callable[[], bool], deadline: datetime | None) -> bool:
        """Wait for `condition` or cancellation until a journey-time deadline."""
        timeout = None if deadline is None else self._real(deadline - self.now())
        try:
            await workflow.wait_condition(
                lambda: condition() or self.cancel_reason is not None, timeout=timeout
            )
        except TimeoutError:
            return False
        self._raise_if_cancelled()
        return True

    # -- side effects --------------------------------------------------------------
    async def partner_action(self, call: PartnerCall) -> dict[str, Any]:
        summary = f"{call.action} ({call.step_id})"
        result: dict[str, Any] = await _activity(
            call.action, call, dict, summary, self.partner_attempts
        )
        return result

    async def send_message(self, message: OutboundMessage) -> MessageOutcome:
        summary = f"{message.channel} ({message.step_id})"
        try:
            return await _activity(
                "messaging.send", message, MessageOutcome, summary, self.partner_attempts
            )
        except ActionFailed as failure:
            return MessageOutcome(status="suppressed", reason=failure.error_type)

    async def contact(self, request: ContactRequest) -> ContactOutcome:
        summary = f"{'/'.join(request.channels)} ({request.step_id})"
        try:
            return await _activity(
                "messaging.contact", request, ContactOutcome, summary, self.partner_attempts
            )
        except ActionFailed as failure:
            # The activity records what it knows (unknown, failed) before it gives up.
            return ContactOutcome(status="failed", reason=failure.error_type)

    async def task_changed(self, change: TaskChange) -> None:
        # The store is ours, not a partner's: retried until it answers.
        await workflow.execute_activity(
            "tasks.record",
            change,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"task {change.change} ({change.task_id})",
        )

    # -- time and events -----------------------------------------------------------
    async def sleep_until(self, when: datetime) -> None:
        await self._until(lambda: False, when)

    async def wait_for_event(
        self, event_types: list[str], correlation_key: str, deadline: datetime | None
    ) -> PartnerEvent | None:
        def match() -> PartnerEvent | None:
            return self.inbox.match(event_types, correlation_key)

        if not await self._until(lambda: match() is not None, deadline):
            return None
        event = match()
        assert event is not None
        self.inbox.take(event)
        return event

    def take_event(self, event_types: list[str], correlation_key: str) -> PartnerEvent | None:
        event = self.inbox.match(event_types, correlation_key)
        if event is not None:
            self.inbox.take(event)
        return event

    def receive(self, event: PartnerEvent) -> bool:
        """Signal side: keep an event for the wait it answers. False for a duplicate."""
        before = self.state.message_status.get(event.correlation_key)
        fresh = self.inbox.receive(event, self.state, self.now())
        if self.state.message_status.get(event.correlation_key) != before:
            self.publish(self.state)  # only a status that moved forward changes the summary
        return fresh

    # -- timeline ------------------------------------------------------------------
    def note(self, kind: str, key: str, summary: str, **correlation: Any) -> None:
        if self._timeline:
            self._notes.append(
                TimelineNote(
                    idempotency_key=f"{self.state.journey_id}/{key}",
                    journey_id=self.state.journey_id,
                    patient_ref=self.patient_ref,
                    type=kind,
                    occurred_at=workflow.now(),
                    summary=summary,
                    correlation=correlation,
                )
            )

    async def write_timeline(self) -> None:
        """Background writer: notes go to the store in batches, by a local activity.

        Journeys that began before the timeline existed replay without it (patched).
        """
        if not self._timeline:
            return
        while True:
            await workflow.wait_condition(lambda: bool(self._notes) or self._closing)
            if not await self.flush_timeline():
                return

    async def flush_timeline(self) -> bool:
        """Write the notes waiting now; False if there were none."""
        if not self._notes:
            return False
        batch, self._notes = self._notes, []
        await workflow.execute_local_activity(
            "timeline.record",
            batch,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"timeline ({len(batch)})",
        )
        return True

    def open_timeline(self) -> None:
        """Call first thing in the run: decides, durably, whether this run keeps a timeline."""
        self._timeline = workflow.patched(TIMELINE_PATCH)

    def close_timeline(self) -> None:
        self._closing = True

    # -- surfacing -----------------------------------------------------------------
    def publish(self, state: JourneyState) -> None:
        workflow.set_current_details(summary(state))
        stage = state.stage
        if state.status == "paused" and workflow.patched(ON_HOLD_PATCH):
            stage = ON_HOLD
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.STAGE.value_set(stage),
            sa.NEEDS_ATTENTION.value_set(state.needs_attention),
        ]
        refill = state.refill
        if refill is not None:  # refill journeys only: other journeys' commands stay as they were
            if refill.risk is not None:
                updates.append(sa.RISK.value_set(refill.risk.level))
            if refill.pdc_year_to_date is not None:
                updates.append(sa.PDC.value_set(round(refill.pdc_year_to_date * 100)))
        wanted: dict[str, Any] = {u.key.name: u.value for u in updates}
        if wanted != self._published:
            workflow.upsert_search_attributes(updates)
            self._published = wanted


def refill_line(refill: RefillState) -> str:
    """Refills at a glance: run-out, PDC this year, the risk and why."""
    out = f"refills: {refill.status.replace('_', ' ')}"
    if refill.run_out is not None:
        out += f" · supply until {refill.run_out:%Y-%m-%d}"
    if refill.pdc_year_to_date is not None:
        out += f" · PDC {refill.pdc_year_to_date:.2f} this year"
    if refill.risk is not None:
        why = "; ".join(refill.risk.reasons[:3])
        out += f" · risk **{refill.risk.level}** ({refill.risk.score}{': ' + why if why else ''})"
    return out


def summary(state: JourneyState) -> str:
    """The Temporal UI's 'current details': what an operator needs at a glance."""
    lines = [
        f"**{state.template_id} v{state.template_version}** · {state.status} · "
        f"stage **{state.stage}** · step `{state.current_step or '-'}`"
    ]
    if state.pending_wait:
        w = state.pending_wait
        until = f" until {w.deadline:%Y-%m-%d %H:%M} UTC" if w.deadline else ""
        lines.append(f"waiting for {' / '.join(w.event_types)} ({w.correlation_key}){until}")
    elif state.next_due_at:
        lines.append(f"next due {state.next_due_at:%Y-%m-%d %H:%M} UTC")
    if state.needs_attention:
        lines.append(f"needs attention: {state.attention_reason}")
    if state.paused_reason is not None:
        lines.append(f"paused: {state.paused_reason or 'no reason given'}")
    open_tasks = [t for t in state.tasks if t.closed_at is None]
    for task in open_tasks:
        esc = f", escalated to {task.escalated_to}" if task.escalated_to else ""
        lines.append(f"task `{task.task_id}` for {task.role}: {task.title}{esc}")
    for branch, step in state.branches.items():
        lines.append(f"branch `{branch}` at `{step}`")
    if state.refill is not None:
        lines.append(refill_line(state.refill))
    runs = f" · run {state.runs}" if state.runs > 1 else ""
    lines.append(f"{state.steps_completed} steps done{runs}")
    return "\n\n".join(lines)
