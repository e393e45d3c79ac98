"""TherapyJourney: one patient's therapy journey, driven by a template snapshot.

A journey can last years: when Temporal suggests it (a long history), the journey
continues as new at a step boundary, once every handler has finished, carrying its
start input and its JourneyMemory. Same workflow id, search attributes and answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

# domain/ (models and pure functions: stdlib and pydantic only) passes through; the
# interpreter, the step handlers and the runtime are imported under the sandbox's normal
# rules, so a determinism slip there is caught.
with workflow.unsafe.imports_passed_through():
    import domain.actions
    import domain.durations
    import domain.events
    import domain.expressions
    import domain.local_time
    import domain.partner_actions
    import domain.steps
    import domain.template  # noqa: F401
    from domain.journey import (
        ControlRequest,
        EventAck,
        Frame,
        JourneyMemory,
        JourneyStart,
        JourneyState,
        StartAck,
    )
    from domain.partners import PartnerEvent

from workflows.interpreter import JourneyInterpreter
from workflows.runtime import SwitchRun
from workflows.temporal_runtime import TemporalRuntime

FINISHED = ("completed", "abandoned", "discontinued", "cancelled")


@workflow.defn(name="TherapyJourney")
class TherapyJourney:
    @workflow.init
    def __init__(self, start: JourneyStart) -> None:
        self.start = start
        memory = start.memory
        if memory is None:
            self.state = JourneyState(
                journey_id=workflow.info().workflow_id,
                template_id=start.template.id,
                template_version=start.template.version,
                started_at=workflow.now(),
            )
        else:
            self.state = memory.state
            self.state.runs += 1
        self.runtime = TemporalRuntime(
            self.state, start.time_scale, start.patient_ref, start.template.partner_attempts,
            memory,
        )  # fmt: skip
        self.resume_at = memory.resume if memory else None
        self.attached = 0
        self.operator_actions = memory.operator_actions if memory else 0

    @workflow.run
    async def run(self, start: JourneyStart) -> JourneyState:
        interpreter = JourneyInterpreter(start, self.state, self.runtime, self.resume_at)
        self.runtime.open_timeline()
        timeline = asyncio.create_task(self.runtime.write_timeline())
        if start.memory is None:
            self.runtime.note(
                "journey.started", "started", f"journey started on {start.template.id} "
                f"v{start.template.version}", template=start.template.id,
            )  # fmt: skip
        else:
            self.runtime.publish(self.state)
        try:
            await interpreter.run()
        except SwitchRun as switch:
            await self._continue_as_new(start, switch.frames, timeline)
        self.runtime.publish(self.state)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self.runtime.close_timeline()
        await timeline
        return self.state

    async def _continue_as_new(
        self, start: JourneyStart, frames: list[Frame], timeline: asyncio.Task[None]
    ) -> None:
        """Hand everything over to a fresh run; nothing that arrived meanwhile is lost:
        the memory is taken after the last handler finished, with no await in between."""
        self.runtime.close_timeline()
        await timeline
        while True:  # an update may note something while the last notes are written
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not await self.runtime.flush_timeline():
                break
        memory = JourneyMemory(
            state=self.state,
            resume=frames,
            inbox=self.runtime.inbox.events,
            seen=self.runtime.inbox.seen,
            cancel_reason=self.runtime.cancel_reason,
            operator_actions=self.operator_actions,
            clock_origin=self.runtime.clock_origin,
        )
        workflow.continue_as_new(
            start.model_copy(update={"memory": memory}),
            search_attributes=workflow.info().typed_search_attributes,
        )

    # -- start --------------------------------------------------------------------------
    @workflow.update
    def attach(self) -> StartAck:
        """Update-with-start answered this until starts became one StartWorkflowExecution
        (gateway/journeys.py); kept for journeys started that way, and for old callers."""
        self.attached += 1
        return StartAck(
            journey_id=self.state.journey_id,
            created=self.attached == 1 and self.state.steps_completed == 0 and self.state.runs == 1,
            template_id=self.state.template_id,
            template_version=self.state.template_version,
        )

    # -- events ----------------------------------------------------------------------
    @workflow.signal
    def event(self, event: PartnerEvent) -> None:
        self.runtime.receive(event)

    @workflow.update
    def deliver_event(self, event: PartnerEvent) -> EventAck:
        """Like the `event` signal, but answers whether the event was new."""
        fresh = self.runtime.receive(event)
        return EventAck(accepted=fresh, duplicate=not fresh)

    # -- inspection ------------------------------------------------------------------
    @workflow.query
    def journey_state(self) -> JourneyState:
        return self.state

    # -- operator control --------------------------------------------------------------
    @workflow.update
    def pause(self, request: ControlRequest) -> JourneyState:
        self.state.status = "paused"
        self.state.paused_reason = request.reason
        self._operator_note("paused", request)
        self.runtime.publish(self.state)
        return self.state

    @pause.validator
    def _validate_pause(self, request: ControlRequest) -> None:
        self._require_status("running", "pause")

    @workflow.update
    def resume(self, request: ControlRequest) -> JourneyState:
        self.state.status = "running"
        self.state.paused_reason = None
        self._operator_note("resumed", request)
        self.runtime.publish(self.state)
        return self.state

    @resume.validator
    def _validate_resume(self, request: ControlRequest) -> None:
        self._require_status("paused", "resume")

    @workflow.update
    def cancel(self, request: ControlRequest) -> JourneyState:
        self.runtime.cancel_reason = request.reason or "cancelled by operator"
        self._operator_note("cancelled", request)
        return self.state

    @cancel.validator
    def _validate_cancel(self, request: ControlRequest) -> None:
        if self.state.status in FINISHED or self.runtime.cancel_reason is not None:
            raise ApplicationError(
                f"journey is already {self.state.status}", type="InvalidState", non_retryable=True
            )

    # -- retired: preferences live in the patient record (the store) --------------------
    @workflow.update
    def set_preferences(self, change: dict[str, Any]) -> JourneyState:
        """Kept so journeys that took this update still replay; it changes nothing."""
        return self.state

    @set_preferences.validator
    def _refuse_preferences(self, change: dict[str, Any]) -> None:
        raise ApplicationError(
            "preferences live in the patient record: PUT /v1/patients/{id}/preferences",
            type="Retired",
            non_retryable=True,
        )

    def _operator_note(self, action: str, request: ControlRequest) -> None:
        self.operator_actions += 1
        self.runtime.note(
            f"operator.{action}", f"operator/{self.operator_actions}",
            f"{action} by operator" + (f": {request.reason}" if request.reason else ""),
        )  # fmt: skip

    def _require_status(self, status: str, action: str) -> None:
        if self.state.status != status:
            raise ApplicationError(
                f"cannot {action} a journey that is {self.state.status}",
                type="InvalidState",
                non_retryable=True,
            )
