"""Start, inspect and steer journeys over the Temporal client."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from client.models import JourneyFilter, JourneyPage
from client.visibility import decode_page_token, encode_page_token, journey_query, summary
from domain.journey import (
    ControlRequest,
    EventAck,
    JourneyStart,
    JourneyState,
    PreferencesChange,
    StartAck,
)
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate
from workflows import search_attributes as sa
from workflows.journey import TherapyJourney

T = TypeVar("T")


async def connect_temporal(
    address: str, namespace: str = "default", *, lazy: bool = False
) -> Client:
    """A client with the pydantic data converter. `lazy`: connect on first use (and again
    on each use until it succeeds) instead of now, for servers that start before Temporal."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter, lazy=lazy
    )


class JourneyError(Exception):
    """Base of what a caller may get back from a journey operation."""


class JourneyNotFound(JourneyError):
    pass


class JourneyClosed(JourneyError):
    pass


class ControlRejected(JourneyError):
    """An update's validator said no (e.g. pausing a paused journey).

    `error_type` is the validator's ApplicationError type: `InvalidState` (the journey is
    in the wrong state for it) or `InvalidPreferences` (the values were wrong)."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type


# A journey that continues as new closes one run and opens the next; a call that lands
# on the closing run is tried again on the new one, this many times.
SWITCH_RETRIES = 10


async def _guarded(
    journey_id: str, call: Callable[[], Awaitable[T]], temporal: Client | None = None
) -> T:
    """Translate Temporal's errors into the journey's own, without patient data."""
    for attempt in range(SWITCH_RETRIES + 1):
        try:
            return await call()
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else None
            raise ControlRejected(str(cause) if cause else str(err), error_type) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND and "completed" not in err.message:
                raise JourneyNotFound(f"no journey {journey_id}") from err
            if "completed" in err.message or err.status == RPCStatusCode.FAILED_PRECONDITION:
                if attempt < SWITCH_RETRIES and await _continued(temporal, journey_id):
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                raise JourneyClosed(f"journey {journey_id} has finished") from err
            raise
    raise AssertionError("unreachable")


async def _continued(temporal: Client | None, journey_id: str) -> bool:
    """Did the run we reached close by continuing as new (so a newer run exists)?"""
    if temporal is None:
        return False
    description = await temporal.get_workflow_handle(journey_id).describe()
    closed_by_switch = description.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    return closed_by_switch or description.status == WorkflowExecutionStatus.RUNNING


class JourneyClient:
    def __init__(
        self, temporal: Client, task_queue: str, *, page_token_key: bytes | None = None
    ) -> None:
        """`page_token_key` authenticates listing page tokens; give every replica of a
        service the same one (default: random, so tokens work within this process)."""
        self.temporal = temporal
        self.task_queue = task_queue
        self.page_token_key = page_token_key or secrets.token_bytes(32)
        self._starting: dict[str, asyncio.Task[StartAck]] = {}

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
        # Concurrent starts of one journey in this process share one call to Temporal
        # (which would refuse more than a few concurrent updates on one workflow anyway).
        # Only the caller whose call it is can learn that it created the journey.
        key = start.workflow_id
        shared = self._starting.get(key)
        if shared is not None:
            ack = await asyncio.shield(shared)
            return ack.model_copy(update={"created": False})
        call = asyncio.ensure_future(self._start(start))
        self._starting[key] = call
        call.add_done_callback(lambda done: self._finished_start(key, done))
        return await asyncio.shield(call)

    def _finished_start(self, key: str, call: asyncio.Task[StartAck]) -> None:
        self._starting.pop(key, None)
        if not call.cancelled():
            call.exception()  # retrieved here, so an unawaited failure is not reported twice

    async def _start(self, start: JourneyStart) -> StartAck:
        template = start.template
        operation = WithStartWorkflowOperation(
            TherapyJourney.run,
            start,
            id=start.workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished journey is not started again by a repeated request.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=sa.at_start(
                template.id, template.version, start.patient_ref, start.program
            ),
            static_summary=f"{template.id} v{template.version} · {start.program}",
        )
        # The operation's own handle future fails too when the start is refused; observe it
        # so asyncio does not report "Future exception was never retrieved".
        watched = asyncio.ensure_future(operation.workflow_handle())
        watched.add_done_callback(lambda done: done.cancelled() or done.exception())
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
        except RPCError as err:
            # Temporal admits a handful of in-flight updates per workflow; a burst of
            # repeated starts overflows that. A journey with updates in flight exists
            # already, so this request did not create it: answer from its description.
            if err.status != RPCStatusCode.RESOURCE_EXHAUSTED:
                raise
            existing = await self._describe_existing(start.workflow_id)
            if existing is None:
                raise
            return existing

    async def _describe_existing(self, journey_id: str) -> StartAck | None:
        try:
            described = await self.handle(journey_id).describe()
        except RPCError:
            return None
        found = described.typed_search_attributes
        template_id, version = found.get(sa.TEMPLATE), found.get(sa.TEMPLATE_VERSION)
        if template_id is None or version is None:
            return None
        return StartAck(
            journey_id=journey_id,
            created=False,
            template_id=template_id,
            template_version=version,
        )

    def handle(self, journey_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(journey_id)

    async def state(self, journey_id: str) -> JourneyState:
        return await self._guarded(journey_id, lambda h: h.query(TherapyJourney.journey_state))

    async def send_event(self, journey_id: str, event: PartnerEvent) -> EventAck:
        return await self._guarded(
            journey_id, lambda h: h.execute_update(TherapyJourney.deliver_event, event)
        )

    async def signal_event(self, journey_id: str, event: PartnerEvent) -> None:
        await self._guarded(journey_id, lambda h: h.signal(TherapyJourney.event, event))

    async def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._guarded(
            journey_id,
            lambda h: h.execute_update(TherapyJourney.pause, ControlRequest(reason=reason)),
        )

    async def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._guarded(
            journey_id,
            lambda h: h.execute_update(TherapyJourney.resume, ControlRequest(reason=reason)),
        )

    async def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return await self._guarded(
            journey_id,
            lambda h: h.execute_update(TherapyJourney.cancel, ControlRequest(reason=reason)),
        )

    async def set_preferences(self, journey_id: str, change: PreferencesChange) -> JourneyState:
        """Change contact preferences; the workflow's validator rejects bad values
        (ControlRejected, error_type InvalidPreferences) before they reach history."""
        return await self._guarded(
            journey_id, lambda h: h.execute_update(TherapyJourney.set_preferences, change)
        )

    async def _guarded(
        self, journey_id: str, call: Callable[[WorkflowHandle[Any, Any]], Awaitable[T]]
    ) -> T:
        return await _guarded(journey_id, lambda: call(self.handle(journey_id)), self.temporal)

    async def find(
        self,
        where: JourneyFilter | None = None,
        *,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> JourneyPage:
        """One page of journeys from Temporal visibility (eventually consistent)."""
        executions = self.temporal.list_workflows(
            journey_query(where or JourneyFilter()),
            page_size=page_size,
            next_page_token=decode_page_token(page_token, self.page_token_key),
        )
        await executions.fetch_next_page()
        return JourneyPage(
            items=[summary(e) for e in executions.current_page or []],
            next_page_token=encode_page_token(executions.next_page_token, self.page_token_key),
        )

    async def result(self, journey_id: str) -> JourneyState:
        handle = self.temporal.get_workflow_handle_for(TherapyJourney.run, journey_id)
        return await handle.result()
