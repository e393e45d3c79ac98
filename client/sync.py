"""JourneyClient for code without an event loop (scripts, WSGI apps, notebooks).

    with SyncJourneyClient.connect("localhost:7233", task_queue="pitwall-journeys") as j:
        ack = j.start(get_template("specialty_start"), patient_ref="pt-7f3a", program="p1")
        print(j.state(ack.journey_id).stage)

The async client runs on a private event loop in a daemon thread; each call blocks
until it is done and raises what the async client raises (JourneyNotFound, ...).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from client.journeys import JourneyClient, connect_temporal
from client.models import JourneyFilter, JourneyPage
from domain.journey import EventAck, JourneyState, PreferencesChange, StartAck
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="pitwall-journey-client", daemon=True
        )
        self.thread.start()

    def run(self, call: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class SyncJourneyClient:
    def __init__(self, journeys: JourneyClient, runner: _LoopThread, timeout: float | None) -> None:
        """Use `connect`; the client must live on the runner's loop."""
        self.journeys = journeys
        self._runner = runner
        self.timeout = timeout

    @classmethod
    def connect(
        cls,
        address: str,
        namespace: str = "default",
        task_queue: str = "pitwall-journeys",
        *,
        lazy: bool = False,
        timeout: float | None = 60.0,
        page_token_key: bytes | None = None,
    ) -> SyncJourneyClient:
        """Connect to Temporal; `timeout` bounds every call (seconds, None: no bound)."""
        runner = _LoopThread()
        try:
            temporal = runner.run(connect_temporal(address, namespace, lazy=lazy), timeout)
        except BaseException:
            runner.stop()
            raise
        journeys = JourneyClient(temporal, task_queue, page_token_key=page_token_key)
        return cls(journeys, runner, timeout)

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(call, self.timeout)

    # -- the JourneyClient API, blocking -------------------------------------------------
    def start(
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
        return self._run(
            self.journeys.start(
                template,
                patient_ref=patient_ref,
                program=program,
                business_key=business_key,
                params=params,
                context=context,
                time_scale=time_scale,
            )
        )

    def state(self, journey_id: str) -> JourneyState:
        return self._run(self.journeys.state(journey_id))

    def send_event(self, journey_id: str, event: PartnerEvent) -> EventAck:
        return self._run(self.journeys.send_event(journey_id, event))

    def signal_event(self, journey_id: str, event: PartnerEvent) -> None:
        self._run(self.journeys.signal_event(journey_id, event))

    def pause(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._run(self.journeys.pause(journey_id, reason))

    def resume(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._run(self.journeys.resume(journey_id, reason))

    def cancel(self, journey_id: str, reason: str = "") -> JourneyState:
        return self._run(self.journeys.cancel(journey_id, reason))

    def set_preferences(self, journey_id: str, change: PreferencesChange) -> JourneyState:
        return self._run(self.journeys.set_preferences(journey_id, change))

    def find(
        self,
        where: JourneyFilter | None = None,
        *,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> JourneyPage:
        return self._run(self.journeys.find(where, page_size=page_size, page_token=page_token))

    def result(self, journey_id: str) -> JourneyState:
        return self._run(self.journeys.result(journey_id))

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._runner.stop()

    def __enter__(self) -> SyncJourneyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
