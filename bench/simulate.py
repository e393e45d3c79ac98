"""The cohort simulator against real workflows: patient-years per second, and memory.

    PYTHONPATH=. .venv/bin/python bench/simulate.py [--patients 10000] [--months 12]
        [--workers 2] [--single-patients 1000] [--real-patients 5] [--real-months 3] [--seed 1]

Three measures, in one run, of refill_adherence on the `typical` scenario:

1. the headline: `--patients` x `--months` simulated (simulate/cohort.py, `--workers`
   processes), wall-clock seconds, patient-years per second, and whether 10,000
   patient-years took under 60 s; beside it `--single-patients` in one process (what the
   processes add);
2. the same template as real workflows on the Temporal dev server with time skipping,
   for the first `--real-patients` patients of the same sampled cohort: each journey
   gets that patient's dispenses (PatientScenario.refill_days) by fast-forwarding its
   clock to the next dispense day and delivering the dispense, then fast-forwards to the
   horizon and is cancelled there as the simulator cancels it; the journeys run side by
   side (one worker, scripted partners: tests/workflows/fakes.py). Its patient-years per
   second, and the simulator's over it (the ratio). Not quite the simulator's world: the
   fake contact activity sends every contact on its first channel (no contact policy:
   quiet hours, caps and an opt-out do not hold), and a real journey's clock starts at
   the dev server's now, not at simulate.script.START (year ends and the plan-year
   re-check fall on other journey days);
3. memory: the RSS high-water mark of this process and of the largest simulator worker
   process (getrusage; a forked worker's counts the pages it shares with this one), and
   the tracemalloc peak of a single-process simulator run of `--traced-patients` patients
   (traced apart: tracing slows the run several times).

A benchmark, not a test: it prints a table and ratios. The machine's load average is
printed with the figures (other work on a 2-core machine moves them).
"""

# ruff: noqa: E402 (the imports come after the sys.path fix below)

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and this file would shadow the
# `simulate` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import os
import resource
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from devtools.temporal_cli import temporal_cli_path
from domain.journey import JourneyState
from domain.template import JourneyTemplate
from domain.template_loader import get_template
from simulate.cohort import Cohort, run_cohort
from simulate.cohort_scenario import DAYS_PER_MONTH, PatientScenario, load_scenario, sample
from tests.e2e.conftest import open_stack, stack_env_in
from tests.fidelity.test_fidelity import run_real as fidelity_run
from workflows import search_attributes as sa

TEMPLATE = "refill_adherence"
SCENARIO = "typical"
GOAL_PATIENT_YEARS = 10_000
GOAL_SECONDS = 60.0


# -- real journeys ---------------------------------------------------------------------------
@dataclass
class RealJourney:
    """One sampled patient's journey as a real workflow: its end state and every run's
    history, oldest first."""

    patient: PatientScenario
    journey_id: str
    state: JourneyState
    histories: list[WorkflowHistory]
    dispenses: int
    patient_ref: str
    started_at: datetime


async def time_skipping_env() -> WorkflowEnvironment:
    """The dev server with per-workflow time skipping, as tests/conftest.py starts it."""
    return await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )  # fmt: skip


async def run_real(
    env: WorkflowEnvironment,
    template: JourneyTemplate,
    patients: list[PatientScenario],
    months: float,
) -> list[RealJourney]:
    """The patients' journeys as real workflows, side by side: the whole stack (worker,
    receiver, store, contact gate, the sandbox on each patient's stepped clock) on the
    time-skipping dev server, moved in lock step to the horizon as the fidelity test
    moves them (tests/fidelity/)."""
    horizon_days = round(months * DAYS_PER_MONTH)
    os.environ.setdefault("PITWALL_ENV", "development")  # the stack's dev secrets, as tests
    with (
        tempfile.TemporaryDirectory(prefix="pitwall-bench-sim-") as data,
        stack_env_in(Path(data)) as stack_env,
    ):
        async with open_stack(env, stack_env) as stack:
            done = await asyncio.gather(
                *(fidelity_run(env, stack, template, p, months) for p in patients)
            )
            return [
                RealJourney(
                    real.patient, real.driven.journey_id, real.driven.state,
                    await histories(env.client, real.driven.journey_id),
                    sum(day < horizon_days for day in real.patient.refill_days),
                    real.patient_ref, real.started_at,
                )
                for real in done
            ]  # fmt: skip


async def histories(client: Client, journey_id: str) -> list[WorkflowHistory]:
    """Every run's history, oldest first: from the latest run back along each run's
    `continued_execution_run_id` (exact; visibility lists are eventually consistent)."""
    runs = [await client.get_workflow_handle(journey_id).fetch_history()]
    while True:
        started = runs[0].events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        handle = client.get_workflow_handle(journey_id, run_id=started.continued_execution_run_id)
        runs.insert(0, await handle.fetch_history())


def journey_events(history: WorkflowHistory) -> list[HistoryEvent]:
    """A run's events but the bench's own: each fast-forward writes an options update
    (the time-skipping config) that no journey in production has."""
    return [
        e
        for e in history.events
        if not (
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
            and e.workflow_execution_options_updated_event_attributes.time_skipping_config_updated
        )
    ]


def event_count(journey: RealJourney) -> int:
    return sum(len(journey_events(h)) for h in journey.histories)


def event_bytes(journey: RealJourney) -> int:
    """History size as the server stores it: the events' protobuf encoding."""
    return sum(e.ByteSize() for h in journey.histories for e in journey_events(h))


def started_runs(journey: RealJourney) -> int:
    return sum(
        1
        for h in journey.histories
        for e in h.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    )


# -- the bench -------------------------------------------------------------------------------
def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} cores"


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _traced(template: JourneyTemplate, patients: int, months: float, seed: int) -> float:
    tracemalloc.start()
    run_cohort(template, load_scenario(SCENARIO), patients=patients, months=months, seed=seed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


async def _real(template: JourneyTemplate, patients: list[PatientScenario], months: float
                ) -> tuple[list[RealJourney], float]:  # fmt: skip
    env = await time_skipping_env()
    async with env:
        began = time.perf_counter()
        done = await run_real(env, template, patients, months)
        return done, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--months", type=float, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--real-patients", type=int, default=5)
    parser.add_argument("--real-months", type=float, default=3)
    parser.add_argument("--single-patients", type=int, default=1000,
                        help="also simulate this many in one process (0: skip)")  # fmt: skip
    parser.add_argument("--traced-patients", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    template, scenario = get_template(TEMPLATE), load_scenario(SCENARIO)

    print(f"{TEMPLATE} on {SCENARIO!r}, seed {args.seed}; {_load()}", flush=True)
    cohort = run_cohort(template, scenario, patients=args.patients, months=args.months,
                        seed=args.seed, workers=args.workers)  # fmt: skip
    sim_rate = cohort.patient_years / cohort.seconds
    print(f"simulated {args.patients} x {args.months:g} months in {cohort.seconds:.1f} s "
          f"({args.workers} processes); {_load()}", flush=True)  # fmt: skip

    single = None
    if args.single_patients:
        single = run_cohort(template, scenario, patients=args.single_patients,
                            months=args.months, seed=args.seed)  # fmt: skip
    small = run_cohort(template, scenario, patients=args.real_patients, months=args.real_months,
                       seed=args.seed)  # fmt: skip
    real_patients = sample(scenario, args.real_patients, args.seed, args.real_months)
    real, real_seconds = asyncio.run(_real(template, real_patients, args.real_months))
    real_years = len(real) * args.real_months / 12
    real_rate = real_years / real_seconds
    print(f"real: {len(real)} journeys x {args.real_months:g} months in {real_seconds:.1f} s; "
          f"{_load()}", flush=True)  # fmt: skip
    traced_mb = _traced(template, args.traced_patients, args.months, args.seed)

    rows = [
        (f"simulator, {args.workers} processes", cohort, cohort.seconds, sim_rate),
        *([("simulator, 1 process", single, single.seconds,
            single.patient_years / single.seconds)] if single else []),
        ("simulator, 1 process (real run's patients)", small, small.seconds,
         small.patient_years / small.seconds),
    ]  # fmt: skip
    print()
    print(f"{'way':<44} {'patients x months':>18} {'patient-years':>13} {'seconds':>8} "
          f"{'patient-years/s':>15} {'vs real':>9}")  # fmt: skip
    for name, c, seconds, rate in rows:
        print(f"{name:<44} {f'{len(c.patients)} x {c.months:g}':>18} {c.patient_years:>13g} "
              f"{seconds:>8.2f} {rate:>15.2f} {rate / real_rate:>8.0f}x")  # fmt: skip
    print(f"{'real workflows, dev server, time skipping':<44} "
          f"{f'{len(real)} x {args.real_months:g}':>18} {real_years:>13g} {real_seconds:>8.2f} "
          f"{real_rate:>15.4f} {1:>8.0f}x")  # fmt: skip
    print()
    per_goal = GOAL_PATIENT_YEARS / sim_rate
    print(f"headline: {cohort.patient_years:g} patient-years in {cohort.seconds:.1f} s "
          f"= {sim_rate:.0f} patient-years/s; 10,000 patient-years at this rate: "
          f"{per_goal:.1f} s (goal < {GOAL_SECONDS:g} s: "
          f"{'met' if per_goal < GOAL_SECONDS else 'missed'})")  # fmt: skip
    print(f"simulator / real: {sim_rate / real_rate:,.0f}x (patient-years per second)")
    print(
        f"peak RSS: this process {_rss_mb(resource.RUSAGE_SELF):.0f} MB, largest worker "
        f"process {_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB; tracemalloc peak of "
        f"{args.traced_patients} x {args.months:g} months in one process: {traced_mb:.1f} MB"
    )
    print()
    print("same patients, simulated / real (stage, fills counted, contacts sent, events):")
    _compare(small, real)


def _compare(small: Cohort, real: list[RealJourney]) -> None:
    for sim, journey in zip(small.patients, real, strict=True):
        state = journey.state
        fills = state.refill.fills_counted if state.refill else 0
        sim_fills = sum(1 for s in sim.steps if s[0] == "watch" and s[2] == "filled")
        sent = sum(1 for d in sim.decisions if d.action == "send")
        print(f"  patient {sim.index}: {sim.stage} / {state.stage}, fills {sim_fills} / {fills}, "
              f"contacts {sent} / {state.messages_sent}, dispenses delivered "
              f"{journey.dispenses}, {started_runs(journey)} run(s), {event_count(journey)} "
              f"events, {event_bytes(journey)} bytes")  # fmt: skip


if __name__ == "__main__":
    main()
