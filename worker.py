"""Runs a Pitwall worker: journeys (workflows) and their partner/messaging activities.

    python worker.py            # against PITWALL_TEMPORAL_ADDRESS (default localhost:7233)

Workers are stateless; run as many as you like on the same task queue.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from temporalio.worker import Worker

from activities import build_activities
from gateway.journeys import connect_temporal
from logs import configure_logging
from settings import Settings, get_settings
from store import Store
from workflows.journey import TherapyJourney
from workflows.sandbox import journey_runner, precompile

log = structlog.get_logger("worker")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    store = await asyncio.to_thread(
        Store.open,
        settings.stack.database(),
        patient_id_key=settings.auth.patient_id_key.get_secret_value().encode(),
    )
    await asyncio.to_thread(precompile)
    temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
    worker = Worker(
        temporal,
        task_queue=settings.temporal.task_queue,
        workflows=[TherapyJourney],
        workflow_runner=journey_runner(),
        activities=build_activities(settings, store),
        # Sync store calls run in threads; keep room for the partner calls beside them.
        max_concurrent_activities=50,
    )
    log.info("worker.started", task_queue=settings.temporal.task_queue)
    async with worker:
        await stop.wait()
    store.close()
    log.info("worker.stopped")


def main() -> None:
    settings = get_settings()
    settings.require_safe()
    configure_logging(settings.stack.log_format)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
