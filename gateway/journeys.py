"""The server's Temporal gateway: start, signal, update, query and list journeys.

Used by the API, the worker's tools and the CLI; services use the HTTP SDK (client/).
Every id it takes is already pseudonymous (the API resolves a caller's patient id).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
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

from contract.journeys import JourneyPage
from domain.journey import (
    ControlRequest,
    EventAck,
    JourneyStart,
    JourneyState,
    StartAck,
)
from domain.partners import PartnerEvent
from gateway.visibility import (
    JourneyFilter,
    decode_page_token,
    encode_page_token,
    journey_query,
    summary,
)
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


def started(handle: WorkflowHandle[Any, Any]) -> bool:
    """Did the start call behind `handle` create the workflow? The SDK keeps the raw
    StartWorkflowExecutionResponse on the handle but has no public accessor for it."""
    response = getattr(handle, "_start_workflow_response", None)
    if response is None:
        raise RuntimeError("temporalio no longer keeps the start response on the handle")
    return bool(response.started)


class JourneyError(Exception):
    """Base of what a caller may get back from a journey operation."""


class JourneyNotFound(JourneyError):
    pass


class JourneyClosed(JourneyError):
    pass


class ControlRejected(JourneyError):
    """An update's validator said no (e.g. pausing a paused journey).

    `error_type` is the validator's ApplicationError type: `InvalidState` (the journey is
    in the wrong state for it)."""

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


class JourneyGateway:
    def __init__(
        self, temporal: Client, task_queue: str, *, page_token_key: bytes | None = None
    ) -> None:
        """`page_token_key` authenticates listing page tokens; give every replica of a
        service the same one (default: random, so tokens work within this process)."""
        self.temporal = temporal
        self.task_queue = task_queue
        self.page_token_key = page_token_key or secrets.token_bytes(32)
        self._starting: dict[str, asyncio.Task[StartAck]] = {}

    async def start(self, start: JourneyStart) -> StartAck:
        """Start a journey, or find the one that exists: never two for one key."""
        # Concurrent starts of one journey in this process share one call to Temporal.
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
        """One StartWorkflowExecution: USE_EXISTING answers at once for a running journey,
        and the response's `started` says whether this call created it, so nothing waits
        for the journey's first workflow task."""
        template = start.template
        try:
            handle = await self.temporal.start_workflow(
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
        except WorkflowAlreadyStartedError:
            return await self._existing(start.workflow_id)
        if started(handle):
            return StartAck(
                journey_id=start.workflow_id,
                created=True,
                template_id=template.id,
                template_version=template.version,
            )
        return await self._existing(start.workflow_id)

    async def _existing(self, journey_id: str) -> StartAck:
        """The journey that was there already, from its search attributes."""
        described = await self.handle(journey_id).describe()
        found = described.typed_search_attributes
        template_id, version = found.get(sa.TEMPLATE), found.get(sa.TEMPLATE_VERSION)
        if template_id is None or version is None:
            raise JourneyError(f"journey {journey_id} has no template attributes")
        return StartAck(
            journey_id=journey_id, created=False, template_id=template_id,
            template_version=version,
        )  # fmt: skip

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
