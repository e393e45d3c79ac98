"""Start, inspect and steer journeys over the Temporal client."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.journey import ControlRequest, EventAck, JourneyStart, JourneyState, StartAck
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate
from workflows import search_attributes as sa
from workflows.journey import TherapyJourney

T = TypeVar("T")


async def connect_temporal(address: str, namespace: str = "default") -> Client:
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


class JourneyError(Exception):
    """Base of what a caller may get back from a journey operation."""


class JourneyNotFound(JourneyError):
    pass


class JourneyClosed(JourneyError):
    pass


class ControlRejected(JourneyError):
    """An update's validator said no (e.g. pausing a paused journey)."""


async def _guarded(journey_id: str, call: Awaitable[T]) -> T:
    """Translate Temporal's errors into the journey's own, without patient data."""
    try:
        return await call
    except WorkflowUpdateFailedError as err:
        raise ControlRejected(str(err.cause) if err.cause else str(err)) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and "completed" not in err.message:
            raise JourneyNotFound(f"no journey {journey_id}") from err
        if "completed" in err.message or err.status == RPCStatusCode.FAILED_PRECONDITION:
            raise JourneyClosed(f"journey {journey_id} has finished") from err
        raise


class JourneyClient:
    def __init__(self, temporal: Client, task_queue: str) -> None:
        self.temporal = temporal
        self.task_queue = task_queue

    async def start(
        self,
        template: JourneyTemplate,
        *,
        patient_ref: str,
        program: str,
        business_key: str | None = None,
        params: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        time_scale: float = 1.0,
    ) -> StartAck:
        """Start a journey, or find the one that exists: never two for one key."""
        start = JourneyStart(
            template=template,
            patient_ref=patient_ref,
            program=program,
            business_key=business_key,
            params=params or {},
            context=context or {},
            time_scale=time_scale,
        )
        operation = WithStartWorkflowOperation(
            TherapyJourney.run,
            start,
            id=start.workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished journey is not started again by a repeated request.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TEMPLATE, template.id),
                    SearchAttributePair(sa.TEMPLATE_VERSION, template.version),
                    SearchAttributePair(sa.STAGE, "REFERRED"),
                    SearchAttributePair(sa.NEEDS_ATTENTION, False),
                ]
            ),
            static_summary=f"{template.id} v{template.version} · {program}",
        )
        try:
            return await self.temporal.execute_update_with_start_workflow(
                TherapyJourney.attach, start_workflow_operation=operation
            )
        except WorkflowAlreadyStartedError:
            state = await self.state(start.workflow_id)
            return StartAck(
                journey_id=state.journey_id,
                created=False,
                template_id=state.template_id,
                template_version=state.template_version,
            )

    def handle(self, journey_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(journey_id)

    async def state(self, journey_id: str) -> JourneyState:
        return await _guarded(
            journey_id, self.handle(journey_id).query(TherapyJourney.journey_state)
        )

    async def send_event(self, journey_id: str, event: PartnerEvent) -> EventAck:
        return await _guarded(
            journey_id, self.handle(journey_id).execute_update(TherapyJourney.deliver_event, event)
        )

    async def signal_event(self, journey_id: str, event: PartnerEvent) -> None:
        await _guarded(journey_id, self.handle(journey_id).signal(TherapyJourney.event, event))

    async def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return await _guarded(
            journey_id,
            self.handle(journey_id).execute_update(
                TherapyJourney.pause, ControlRequest(reason=reason)
            ),
        )

    async def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return await _guarded(
            journey_id,
            self.handle(journey_id).execute_update(
                TherapyJourney.resume, ControlRequest(reason=reason)
            ),
        )

    async def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return await _guarded(
            journey_id,
            self.handle(journey_id).execute_update(
                TherapyJourney.cancel, ControlRequest(reason=reason)
            ),
        )

    async def result(self, journey_id: str) -> JourneyState:
        handle = self.temporal.get_workflow_handle_for(TherapyJourney.run, journey_id)
        return await handle.result()
