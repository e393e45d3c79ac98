"""The workflow test harness: any template, scripted partners, the real dev server.

    async def test_my_template(journey_harness):
        h = await journey_harness(ANSWERS, template="nurse_onboarding")
        jid = await h.start(params={...})
        await h.reaches(jid, "training")            # waiting in that step
        await h.send(jid, "task.completed", "training-1")
        state = await h.finish(jid)                 # fast-forwards timers to the end

`template` is a template id from templates/ (latest version) or a JourneyTemplate
(default: specialty_start v1); answers are per
partner action (a result dict, an exception, or a callable of the call). `harness` is
the same fixture with `specialty_start` as the default template.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.journey import EventAck, JourneyStart, JourneyState
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate
from domain.template_loader import get_template
from gateway.journeys import JourneyGateway
from tests.workflows.fakes import ScriptedPartners
from workflows.journey import TherapyJourney
from workflows.sandbox import journey_runner

HISTORIES = Path(__file__).parent / "histories"
# specialty_start v1: journeys begun on it finish on it, so its tests stay (v2 has its own).
V1 = get_template("specialty_start", version=1)


class Harness:
    def __init__(
        self,
        env: WorkflowEnvironment,
        partners: ScriptedPartners,
        queue: str,
        template: JourneyTemplate,
    ) -> None:
        self.env = env
        self.partners = partners
        self.template = template
        self.journeys = JourneyGateway(env.client, queue)

    async def start(self, template: JourneyTemplate | None = None, **kwargs: Any) -> str:
        kwargs.setdefault("patient_ref", f"pt-x{uuid.uuid4().hex[:10]}")
        kwargs.setdefault("program", "demo")
        ack = await self.journeys.start(JourneyStart(template=template or self.template, **kwargs))
        return ack.journey_id

    async def state(self, journey_id: str) -> JourneyState:
        return await self.journeys.state(journey_id)

    async def reaches(self, journey_id: str, step: str, within: float = 15.0) -> JourneyState:
        """Wait until the journey waits in `step` (also inside a parallel branch)."""
        deadline = time.monotonic() + within
        while True:
            state = await self.state(journey_id)
            here = state.current_step == step or step in state.branches.values()
            if here and (state.pending_wait or state.next_due_at):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"journey never reached {step}: at {state.current_step}")
            await asyncio.sleep(0.1)

    async def until(
        self, journey_id: str, check: Callable[[JourneyState], bool], within: float = 30.0
    ) -> JourneyState:
        """Wait until the journey's state passes `check` (a sync point, not a sleep)."""
        deadline = time.monotonic() + within
        while True:
            state = await self.state(journey_id)
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"journey never got there: at {state.current_step}")
            await asyncio.sleep(0.05)

    async def noted(self, kind: str, within: float = 10.0) -> None:
        """Until the journey's timeline writer has recorded a note of this kind."""
        deadline = time.monotonic() + within
        while not any(n.type == kind for n in self.partners.timeline):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} on the timeline")
            await asyncio.sleep(0.05)

    async def send(self, journey_id: str, type_: str, key: str, event_id: str | None = None,
                   **data: Any) -> None:  # fmt: skip
        await self.journeys.signal_event(
            journey_id,
            PartnerEvent(
                event_id=event_id or uuid.uuid4().hex,
                type=type_,
                correlation_key=key,
                occurred_at=datetime.now(UTC),
                data=data,
            ),
        )

    async def deliver(self, journey_id: str, type_: str, key: str, **data: Any) -> EventAck:
        """Like `send`, as an update: it answers once the journey's activation that took
        the event has finished (a sync point: whatever the event caused has happened)."""
        return await self.journeys.send_event(
            journey_id,
            PartnerEvent(
                event_id=uuid.uuid4().hex,
                type=type_,
                correlation_key=key,
                occurred_at=datetime.now(UTC),
                data=data,
            ),
        )

    async def fast_forward(self, journey_id: str, days: float) -> None:
        handle = self.journeys.handle(journey_id)
        await self.env.fast_forward(handle, timedelta(days=days))

    async def finish(self, journey_id: str, record_as: str | None = None) -> JourneyState:
        await self.env.fast_forward(self.journeys.handle(journey_id))
        state = await self.journeys.result(journey_id)
        if record_as:
            await self.record(journey_id, record_as)
        return state

    async def runs(self, journey_id: str) -> list[WorkflowHistory]:
        """Every run's history, oldest first (continue-as-new makes several)."""
        query = f"WorkflowId = '{journey_id}'"
        executions = [e async for e in self.env.client.list_workflows(query)]
        executions.sort(key=lambda e: e.start_time)
        return [
            await self.env.client.get_workflow_handle(journey_id, run_id=e.run_id).fetch_history()
            for e in executions
        ]

    async def record(self, journey_id: str, name: str, run: int = -1) -> None:
        """With PITWALL_RECORD_HISTORIES=r<N>, keep this run's history as a golden."""
        revision = os.environ.get("PITWALL_RECORD_HISTORIES")
        if revision:
            history = (await self.runs(journey_id))[run]
            (HISTORIES / f"{revision}-{name}.json").write_text(history.to_json())


class HarnessFactory(Protocol):
    def __call__(
        self,
        answers: dict[str, Any],
        template: str | JourneyTemplate = ...,
        env: WorkflowEnvironment | None = ...,
    ) -> Awaitable[Harness]: ...


@pytest.fixture
async def journey_harness(skipping_env: WorkflowEnvironment) -> AsyncIterator[HarnessFactory]:
    workers: list[Worker] = []

    async def make(
        answers: dict[str, Any],
        template: str | JourneyTemplate = V1,
        env: WorkflowEnvironment | None = None,
    ) -> Harness:
        env = env or skipping_env
        queue = f"test-{uuid.uuid4().hex[:8]}"
        partners = ScriptedPartners(answers)
        partners.client = env.client
        worker = Worker(
            env.client,
            task_queue=queue,
            workflows=[TherapyJourney],
            workflow_runner=journey_runner(),
            activities=partners.activities(),
        )
        workers.append(worker)
        asyncio.get_running_loop().create_task(worker.run())
        chosen = get_template(template) if isinstance(template, str) else template
        return Harness(env, partners, queue, chosen)

    yield make
    for worker in workers:
        await worker.shutdown()


@pytest.fixture
async def harness(journey_harness: HarnessFactory) -> HarnessFactory:
    return journey_harness
