"""The bare baseline for the sustained-rate sweep: the least a Temporal app can do per event.

A sandboxed workflow waits for one signal, then runs one activity that makes one HTTP
POST: an SMS to the partner sandbox's Twilio-shaped endpoint, which stamps its receipt
time exactly as it does for Pitwall's welcome SMS. No store, no API, no templates.

    python bench/baseline.py --address 127.0.0.1:7233 --task-queue q --sms-url http://...

runs its worker until SIGTERM; bench/api.py starts it as a child process beside
Pitwall's worker, against the same dev server.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

SMS_TEXT = "Welcome. Your care team is here to help. Reply HELP for help, STOP to opt out."


@dataclass
class SmsOrder:
    patient_ref: str
    to: str
    event_id: str


@workflow.defn(name="BenchBaseline")
class BaselineFlow:
    """Wait for the event, then send one SMS."""

    def __init__(self) -> None:
        self._event: str | None = None

    @workflow.run
    async def run(self, patient_ref: str) -> None:
        await workflow.wait_condition(lambda: self._event is not None)
        assert self._event is not None
        await workflow.execute_activity(
            "bench.send_sms",
            SmsOrder(patient_ref=patient_ref, to="+15555550199", event_id=self._event),
            start_to_close_timeout=timedelta(seconds=30),
        )

    @workflow.signal
    def event(self, event_id: str) -> None:
        self._event = event_id


class SmsSender:
    def __init__(self, http: httpx.AsyncClient, account_sid: str, sender: str) -> None:
        self.http = http
        self.account_sid = account_sid
        self.sender = sender

    @activity.defn(name="bench.send_sms")
    async def send(self, order: SmsOrder) -> str:
        response = await self.http.post(
            f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            data={
                "To": order.to,
                "From": self.sender,
                "Body": SMS_TEXT,
                "PitwallPatientRef": order.patient_ref,
            },
            headers={"Idempotency-Key": f"{activity.info().workflow_id}/{order.event_id}"},
        )
        response.raise_for_status()
        return str(response.json()["sid"])


async def run_worker(args: argparse.Namespace, stop: asyncio.Event) -> None:
    temporal = await Client.connect(args.address, data_converter=pydantic_data_converter)
    async with httpx.AsyncClient(
        base_url=args.sms_url,
        auth=(args.account_sid, args.auth_token),
        timeout=10,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
    ) as http:
        sender = SmsSender(http, args.account_sid, args.sender)
        worker = Worker(
            temporal,
            task_queue=args.task_queue,
            workflows=[BaselineFlow],
            activities=[sender.send],
            max_concurrent_activities=50,  # as Pitwall's worker
        )
        async with worker:
            print(f"baseline worker on {args.task_queue}", flush=True)
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="Temporal frontend host:port")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--sms-url", required=True, help="sandbox base URL")
    parser.add_argument("--account-sid", default="ACsandbox")
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--sender", default="+15555550100")
    args = parser.parse_args()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(args, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
