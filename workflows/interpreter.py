"""Runs a journey template, step by step, against a JourneyRuntime.

Deterministic: time comes from the runtime, nothing here performs I/O. The same code
runs inside the TherapyJourney workflow and (later) in a cohort simulator.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain import expressions
from domain.actions import OutboundMessage, PartnerCall
from domain.durations import parse_duration
from domain.journey import HumanTask, JourneyStart, JourneyState, PendingWait, StepRecord
from domain.template import (
    BranchStep,
    DelayStep,
    ExitStep,
    HumanTaskStep,
    MessageStep,
    PartnerActionStep,
    Step,
    WaitForEventStep,
)
from workflows.runtime import ActionFailed, JourneyRuntime

DEFAULT_TIMEZONE = "America/New_York"
OPERATOR_RETRY = "operator.retry"
TASK_COMPLETED = "task.completed"


class JourneyInterpreter:
    def __init__(self, start: JourneyStart, state: JourneyState, runtime: JourneyRuntime) -> None:
        self.start = start
        self.template = start.template
        self.state = state
        self.rt = runtime
        self.params: dict[str, Any] = {**self.template.parameters, **start.params}
        self.outputs = state.outputs
        self.events = state.events
        self.visits = state.visits

    # -- driving -------------------------------------------------------------------
    async def run(self) -> JourneyState:
        step_id: str | None = self.template.steps[0].id
        while step_id is not None:
            await self.rt.checkpoint()
            step_id = await self._run_step(self.template.step(step_id))
        return self.state

    async def _run_step(self, step: Step) -> str | None:
        self.visits[step.id] = self.visits.get(step.id, 0) + 1
        record = StepRecord(
            step_id=step.id, kind=step.kind, visit=self.visits[step.id], started_at=self.rt.now()
        )
        self.state.current_step = step.id
        if step.stage and step.stage != self.state.stage:
            self.state.stage = step.stage
            self.rt.note(
                "journey.milestone", f"stage/{step.id}/{record.visit}", f"stage {step.stage}",
                step=step.id,
            )  # fmt: skip
        self.rt.publish(self.state)
        next_id, outcome = await self._dispatch(step)
        record.finished_at = self.rt.now()
        record.outcome = outcome
        self.state.completed_steps.append(record)
        self.state.pending_wait = None
        self.state.next_due_at = None
        self.rt.publish(self.state)
        return next_id

    async def _dispatch(self, step: Step) -> tuple[str | None, str]:
        match step:
            case PartnerActionStep():
                return await self._partner_action(step)
            case MessageStep():
                return await self._message(step)
            case WaitForEventStep():
                return await self._wait_for_event(step)
            case DelayStep():
                return await self._delay(step)
            case BranchStep():
                return self._branch(step)
            case HumanTaskStep():
                return await self._human_task(step)
            case ExitStep():
                self.state.status = step.outcome
                self.state.outcome_reason = step.reason or step.outcome
                self.state.current_step = None
                self.rt.note(
                    "journey.ended", "finished", f"journey {step.outcome}: {step.reason}",
                    outcome=step.outcome,
                )  # fmt: skip
                return None, step.outcome
        raise AssertionError(f"unhandled step kind {step.kind}")

    def _after(self, step: Step) -> str | None:
        return step.next or self.template.following(step.id)

    # -- evaluation context ------------------------------------------------------------
    def scope(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "context": self.start.context,
            "steps": self.outputs,
            "events": self.events,
            "journey": {
                "id": self.state.journey_id,
                "program": self.start.program,
                "patient_ref": self.start.patient_ref,
                "started_at": self.state.started_at.isoformat() if self.state.started_at else None,
            },
        }

    def _eval(self, expression: str) -> Any:
        return expressions.evaluate(expression, self.scope())

    def _duration(self, value: str) -> timedelta:
        if value.startswith("params."):
            value = str(self.params[value.removeprefix("params.")])
        return parse_duration(value)

    def _idempotency_key(self, step: Step) -> str:
        return f"{self.state.journey_id}/{step.id}/{self.visits[step.id]}"

    # -- steps -------------------------------------------------------------------------
    async def _partner_action(self, step: PartnerActionStep) -> tuple[str | None, str]:
        while True:
            call = PartnerCall(
                action=step.action,
                journey_ref=self.state.journey_id,
                patient_ref=self.start.patient_ref,
                program=self.start.program,
                step_id=step.id,
                idempotency_key=self._idempotency_key(step),
                fields={**self.params, **{k: self._eval(v) for k, v in step.inputs.items()}},
            )
            try:
                self.outputs[step.id] = await self.rt.partner_action(call)
            except ActionFailed as failure:
                target = step.on_error.get(failure.error_type) or step.on_error.get("*")
                if target:
                    self.outputs[step.id] = {"error": failure.error_type}
                    return target, f"error:{failure.error_type}"
                # Nobody planned for this: park the journey for an operator, then retry.
                await self._hold_for_operator(step, failure.error_type)
                self.visits[step.id] += 1  # a new attempt gets a new idempotency key
                continue
            outcome = self.outputs[step.id].get("outcome", "done")
            return self._after(step), str(outcome)

    async def _hold_for_operator(self, step: Step, reason: str) -> None:
        self._attention(f"{step.id}: {reason}")
        self.rt.note(
            "journey.held", f"held/{step.id}/{self.visits[step.id]}",
            f"held for an operator: {reason}", step=step.id,
        )  # fmt: skip
        await self._wait([OPERATOR_RETRY], step.id, None, step)
        self._clear_attention()

    async def _message(self, step: MessageStep) -> tuple[str | None, str]:
        values = {
            "program_name": self.template.program_name,
            "help_contact": self.template.help_contact,
            **{k: self._eval(v) for k, v in step.values.items()},
        }
        outcome = await self.rt.send_message(
            OutboundMessage(
                journey_ref=self.state.journey_id,
                patient_ref=self.start.patient_ref,
                program=self.start.program,
                step_id=step.id,
                idempotency_key=self._idempotency_key(step),
                channel=step.channel,
                purpose=step.purpose,
                message_class=step.message_class,
                text=step.text.format(**values),
                subject=step.subject,
            )
        )
        if outcome.message_id:
            self.state.message_status.setdefault(outcome.message_id, "accepted")
        if outcome.status == "suppressed":
            self._attention(f"{step.id}: message suppressed ({outcome.reason})")
            return self._after(step), f"suppressed:{outcome.reason}"
        return self._after(step), "sent"

    async def _wait_for_event(self, step: WaitForEventStep) -> tuple[str | None, str]:
        key = str(self._eval(step.correlation))
        deadline = self.rt.now() + self._duration(step.timeout)
        event = await self._wait(step.event_types(), key, deadline, step)
        if event is None:
            return step.on_timeout, "timeout"
        self.events[step.id] = {
            **event.data,
            "type": event.type,
            "event_id": event.event_id,
            "occurred_at": event.occurred_at.isoformat(),
            "received_at": self.rt.now().isoformat(),
        }
        return self._after(step), event.type

    async def _wait(self, types: list[str], key: str, deadline: datetime | None, step: Step) -> Any:
        self.state.pending_wait = PendingWait(
            step_id=step.id, event_types=types, correlation_key=key, deadline=deadline
        )
        self.state.next_due_at = deadline
        self.rt.publish(self.state)
        event = await self.rt.wait_for_event(types, key, deadline)
        self.state.pending_wait = None
        return event

    async def _delay(self, step: DelayStep) -> tuple[str | None, str]:
        if step.until is not None:
            when = expressions.evaluate(f"at({step.until})", self.scope())
        else:
            when = self.rt.now() + self._duration(step.duration or "0s")
        if step.at_local_time:
            when = next_local_time(when, step.at_local_time, self.timezone)
        self.state.next_due_at = when
        self.rt.publish(self.state)
        await self.rt.sleep_until(when)
        return self._after(step), "elapsed"

    @property
    def timezone(self) -> str:
        return str(self.start.context.get("timezone") or DEFAULT_TIMEZONE)

    def _branch(self, step: BranchStep) -> tuple[str | None, str]:
        for case in step.cases:
            if self._eval(case.when):
                return case.goto, case.when
        return step.default, "default"

    async def _human_task(self, step: HumanTaskStep) -> tuple[str | None, str]:
        now = self.rt.now()
        task = HumanTask(
            task_id=f"{step.id}-{self.visits[step.id]}",
            step_id=step.id,
            title=step.title or step.id,
            role=step.role,
            opened_at=now,
            due_at=now + self._duration(step.sla),
        )
        self.state.tasks.append(task)
        self.rt.note(
            "task.opened", f"task/{task.task_id}/opened", f"task for {task.role}: {task.title}",
            task_id=task.task_id,
        )  # fmt: skip
        event = await self._wait([TASK_COMPLETED], task.task_id, task.due_at, step)
        if event is None:
            task.escalated_to = step.escalate_to
            self._attention(f"task {task.task_id} overdue; escalated to {step.escalate_to}")
            self.rt.note(
                "task.escalated", f"task/{task.task_id}/escalated",
                f"task overdue; escalated to {step.escalate_to}", task_id=task.task_id,
            )  # fmt: skip
            give_up = (
                self.rt.now() + self._duration(step.give_up_after) if step.give_up_after else None
            )
            event = await self._wait([TASK_COMPLETED], task.task_id, give_up, step)
            self._clear_attention()
        task.closed_at = self.rt.now()
        if event is None:
            self.rt.note(
                "task.abandoned", f"task/{task.task_id}/abandoned", "task given up",
                task_id=task.task_id,
            )  # fmt: skip
            return step.on_timeout, "gave_up"
        self.rt.note(
            "task.completed", f"task/{task.task_id}/completed", f"task done by {task.role}",
            task_id=task.task_id,
        )  # fmt: skip
        self.events[step.id] = {**event.data, "type": event.type}
        return self._after(step), "done" if task.escalated_to is None else "done_after_escalation"

    # -- attention ---------------------------------------------------------------------
    def _attention(self, reason: str) -> None:
        self.state.needs_attention = True
        self.state.attention_reason = reason
        self.rt.publish(self.state)

    def _clear_attention(self) -> None:
        self.state.needs_attention = False
        self.state.attention_reason = None


def next_local_time(after: datetime, hhmm: str, timezone: str) -> datetime:
    """The first HH:MM in `timezone` at or after `after` (a timezone-aware instant)."""
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    hour, minute = (int(p) for p in hhmm.split(":"))
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), zone)
    return candidate
