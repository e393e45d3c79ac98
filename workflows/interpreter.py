"""Runs a journey template, step by step, against a JourneyRuntime.

Plain deterministic code, imported by the workflow under the sandbox's normal rules:
time comes from the runtime, nothing here performs I/O. The same code runs inside the
TherapyJourney workflow and, on a virtual clock, in the tests and the cohort simulator.

Each step kind's behaviour is one handler in workflows/steps/ (dispatch by kind). This
module drives sequences of steps, keeps the state, and offers handlers what they share:
expressions, durations, idempotency keys, waits, holds for an operator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from domain import expressions
from domain.business_calendar import is_business_duration, parse_business_duration
from domain.durations import parse_duration
from domain.events import OPERATOR_RETRY
from domain.journey import Frame, JourneyStart, JourneyState, PendingWait, StepRecord
from domain.local_time import local_date
from domain.steps import Step
from domain.steps.base import StepBase
from workflows.runtime import JourneyCancelled, JourneyRuntime, SwitchRun
from workflows.steps import END, load_handlers
from workflows.steps.human_task import cancel_open_tasks

HANDLERS = load_handlers()
DEFAULT_TIMEZONE = "America/New_York"


class JourneyEnded(Exception):
    pass


class JourneyInterpreter:
    def __init__(
        self,
        start: JourneyStart,
        state: JourneyState,
        runtime: JourneyRuntime,
        resume: list[Frame] | None = None,
    ) -> None:
        self.start = start
        self.template = start.template
        self.state = state
        self.rt = runtime
        self.resume = resume or None
        self.params: dict[str, Any] = {**self.template.parameters, **start.params}
        self.outputs = state.outputs
        self.events = state.events
        self.visits = state.visits
        self.parallel_depth = 0  # no switch to a new run while branches are running
        self._scope = _Scope(self)
        # What handlers derive once per run from the template and the start alone (never
        # from the state), e.g. a refill step's resolved policy.
        self.memo: dict[Any, Any] = {}

    # -- driving -------------------------------------------------------------------
    async def run(self) -> JourneyState:
        """Run to the end; raises SwitchRun when the journey should continue as new."""
        try:
            await self.run_sequence(self.template.steps, self.resume)
        except JourneyEnded:
            pass
        except JourneyCancelled as cancelled:
            self.state.status = "cancelled"
            self.state.outcome_reason = str(cancelled) or "cancelled"
            self.state.pending_wait = None
            self.state.next_due_at = None
            await cancel_open_tasks(self, "journey_cancelled")
            self.rt.note("journey.ended", "finished", "journey cancelled")
        self.state.needs_attention = False
        self.state.branches.clear()
        return self.state

    async def run_sequence(
        self, steps: list[Step], resume: list[Frame] | None, branch: str | None = None
    ) -> None:
        """Run steps from the first (or where `resume` says) until control falls off the end."""
        step_id: str | None = resume[0].step_id if resume else steps[0].id
        while step_id is not None:
            frame, inner = (resume[0], resume[1:]) if resume else (None, [])
            resume = None
            await self.rt.checkpoint()
            if frame is None and self.parallel_depth == 0 and self.rt.switch_due():
                raise SwitchRun([Frame(step_id=step_id)])
            step = self.template.step(step_id)
            target = await self.run_step(step, [frame, *inner] if frame and inner else None, branch)
            if target == END:
                raise JourneyEnded
            step_id = target or self.template.following(step_id)

    async def run_step(
        self, step: StepBase, resume: list[Frame] | None, branch: str | None
    ) -> str | None:
        if resume is None:
            self.visits[step.id] = self.visits.get(step.id, 0) + 1
            started = self.rt.now()
        else:
            started = resume[0].started_at or self.rt.now()
        record = StepRecord(
            step_id=step.id, kind=step.kind, visit=self.visits[step.id], started_at=started
        )
        if branch is None:
            self.state.current_step = step.id
        else:
            self.state.branches[branch] = step.id
        if resume is None and step.stage and step.stage != self.state.stage:
            self.state.stage = step.stage
            self.rt.note(
                "journey.milestone", f"stage/{step.id}/{record.visit}", f"stage {step.stage}",
                step=step.id,
            )  # fmt: skip
        if resume is None and step.milestone and step.milestone not in self.state.milestones:
            self.state.milestones[step.milestone] = started
            self.rt.note(
                "journey.milestone", f"milestone/{step.milestone}",
                f"milestone {step.milestone}", step=step.id,
            )  # fmt: skip
        self.rt.publish(self.state)
        try:
            target, outcome = await HANDLERS[step.kind](self, step, resume)
        except SwitchRun as switch:
            if switch.frames and switch.frames[0].step_id == step.id:
                switch.frames[0].started_at = started
            raise
        record.finished_at = self.rt.now()
        record.outcome = outcome
        self.state.complete(record)
        if self.state.pending_wait and self.state.pending_wait.step_id == step.id:
            self.state.pending_wait = None
        self.state.next_due_at = None
        self.rt.publish(self.state)
        return target

    # -- what handlers share ---------------------------------------------------------
    def scope(self) -> Mapping[str, Any]:
        """What expressions read: params, context, steps, events, loops, journey."""
        return self._scope

    def journey_names(self) -> dict[str, Any]:
        state = self.state
        return {
            "id": state.journey_id,
            "program": self.start.program,
            "patient_ref": self.start.patient_ref,
            "started_at": state.started_at.isoformat() if state.started_at else None,
            "today": self.today().isoformat(),
        }

    def eval(self, expression: str) -> Any:
        return expressions.evaluate(expression, self._scope)

    def duration(self, value: str) -> timedelta:
        if value.startswith("params."):
            value = str(self.params[value.removeprefix("params.")])
        return parse_duration(value)

    def deadline(self, value: str) -> datetime:
        """Now plus `value`: wall-clock, or business time on the template's calendar."""
        if value.startswith("params."):
            value = str(self.params[value.removeprefix("params.")])
        calendar = self.template.calendar
        if is_business_duration(value):
            return calendar.add_business_time(
                self.rt.now(), parse_business_duration(value, calendar)
            )
        return self.rt.now() + parse_duration(value)

    def idempotency_key(self, step: StepBase) -> str:
        return f"{self.state.journey_id}/{step.id}/{self.visits[step.id]}"

    def today(self) -> date:
        """The journey's date where the patient lives."""
        return local_date(self.rt.now(), self.timezone)

    @property
    def timezone(self) -> str:
        return str(self.start.context.get("timezone") or DEFAULT_TIMEZONE)

    async def wait(
        self, types: list[str], key: str, deadline: datetime | None, step: StepBase
    ) -> Any:
        self.state.pending_wait = PendingWait(
            step_id=step.id, event_types=types, correlation_key=key, deadline=deadline
        )
        self.state.next_due_at = deadline
        self.rt.publish(self.state)
        event = await self.rt.wait_for_event(types, key, deadline)
        if self.state.pending_wait and self.state.pending_wait.step_id == step.id:
            self.state.pending_wait = None
        return event

    async def hold_for_operator(self, step: StepBase, reason: str) -> Any:
        """Flag the journey and wait for `operator.retry` (correlation: the step id)."""
        self.attention(f"{step.id}: {reason}")
        self.rt.note(
            "journey.held", f"held/{step.id}/{self.visits[step.id]}",
            f"held for an operator: {reason}", step=step.id,
        )  # fmt: skip
        event = await self.wait([OPERATOR_RETRY], step.id, None, step)
        self.clear_attention()
        return event

    def attention(self, reason: str) -> None:
        self.state.needs_attention = True
        self.state.attention_reason = reason
        self.rt.publish(self.state)

    def clear_attention(self) -> None:
        self.state.needs_attention = False
        self.state.attention_reason = None


class _Scope(Mapping[str, Any]):
    """An interpreter's scope, read live: each root is looked up (loops and journey built)
    when an expression reads it, so one object serves every evaluation (an evaluation
    runs through without awaiting: nothing changes under it)."""

    ROOTS = ("params", "context", "steps", "events", "loops", "journey")

    def __init__(self, j: JourneyInterpreter) -> None:
        self._j = j

    def get(self, name: str, default: Any = None) -> Any:
        j = self._j
        if name == "steps":
            return j.outputs
        if name == "context":
            return j.start.context
        if name == "params":
            return j.params
        if name == "events":
            return j.events
        if name == "loops":
            return {loop: {"iteration": n} for loop, n in j.state.loops.items()}
        if name == "journey":
            return j.journey_names()
        return default

    def __getitem__(self, name: str) -> Any:
        if name not in self.ROOTS:
            raise KeyError(name)
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ROOTS)

    def __len__(self) -> int:
        return len(self.ROOTS)
