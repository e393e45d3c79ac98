"""A cohort on the virtual clock: each sampled patient's journey runs the production
interpreter, step handlers and contact policy (ContactBook), its partners and people
scripted from the patient's sampled scenario (a Script per template, SCRIPTS).

    cohort = run_cohort(get_template("refill_adherence"), load_scenario("typical"),
                        patients=200, months=12, seed=7)

The patients of a batch (BATCH) run interleaved on one clock (simulate/scheduler.py);
`workers` spreads batches over processes. Patient i depends on (seed, i) alone, and
journeys of different patients share nothing the policy counts (caps are per person),
so the cohort is the same however it is split.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from domain.journey import JourneyKey, JourneyStart, JourneyState
from domain.template import JourneyTemplate
from simulate.cohort_scenario import (
    DAYS_PER_MONTH,
    CohortScenario,
    PatientScenario,
    sample,
    sample_patient,
)
from simulate.contacts import ContactBook
from simulate.hub_script import hub_script
from simulate.refill_script import refill_script
from simulate.runtime import Simulated, VirtualRuntime, run_journey
from simulate.scheduler import CohortScheduler
from simulate.script import (
    PROGRAM,
    START,
    Script,
    ScriptFactory,
    World,
    patient_ref,
    recipient,
)


class StepDone(NamedTuple):
    step_id: str
    visit: int
    outcome: str | None
    day: float  # when it finished


@dataclass(frozen=True)
class ContactRecord:
    """One contact-policy decision: which step asked, the decision, and when (day)."""

    day: float
    step_id: str
    attempt: int
    action: str  # send | defer | suppress
    channel: str | None
    reason: str | None

    @property
    def label(self) -> str:
        """ "send:sms", "defer:quiet_hours", "suppress:opted_out"."""
        return f"{self.action}:{self.channel if self.action == 'send' else self.reason}"


@dataclass(frozen=True)
class TaskRecord:
    """One human task: who it landed on, when, and whether its SLA was breached."""

    task_id: str
    step_id: str
    role: str
    opened_day: float
    due_day: float | None
    closed_day: float | None
    closed_as: str | None  # completed, abandoned, cancelled (with the outcome) or None
    escalated: bool  # the SLA passed before anyone completed it


@dataclass
class PatientResult:
    index: int
    template: str  # id@version
    status: str
    stage: str
    outcome_reason: str | None
    steps: list[StepDone]  # every completed step, in order
    stages: list[tuple[str, float]]  # each stage entered, with the day it was entered
    milestones: dict[str, float]  # milestone → day first reached
    decisions: list[ContactRecord]
    task_records: list[TaskRecord]
    pdc_by_year: dict[int, float]
    pdc_year_to_date: float | None
    risk_level: str | None
    at_risk_episodes: int
    cost: Counter[str]  # activity, timer, signal, run: what Temporal would record
    days: float  # journey days simulated (to the end or the horizon)

    @property
    def contacts(self) -> Counter[str]:
        return Counter(d.label for d in self.decisions)

    @property
    def pdc(self) -> float | None:
        """The latest measurement year closed within the horizon, else the open year's PDC
        to date (a 12-month run's open year has only begun at its horizon)."""
        if self.pdc_by_year:
            return self.pdc_by_year[max(self.pdc_by_year)]
        return self.pdc_year_to_date

    @property
    def tasks(self) -> Counter[str]:
        return Counter(t.role for t in self.task_records)


@dataclass
class Cohort:
    template: str
    scenario: str = ""
    seed: str = ""
    patients: list[PatientResult] = field(default_factory=list)
    months: float = 12
    seconds: float = 0.0

    @property
    def patient_years(self) -> float:
        return len(self.patients) * self.months / 12

    def stages(self) -> Counter[str]:
        return Counter(p.stage for p in self.patients)

    def contacts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for p in self.patients:
            total.update(p.contacts)
        return total

    def tasks(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for p in self.patients:
            total.update(p.tasks)
        return total

    def adherent_share(self) -> float | None:
        values = [p.pdc for p in self.patients if p.pdc is not None]
        return sum(v >= 0.8 for v in values) / len(values) if values else None


# Journeys interleaved on one clock at a time: memory holds one batch's journeys, not
# the cohort's, and the progress bar moves per batch. Larger batches run slower here
# (each journey's working set falls out of the CPU's caches), for the same results.
BATCH = 100

SCRIPTS: dict[str, ScriptFactory] = {
    "refill_adherence": refill_script,
    "specialty_start": hub_script,
}


class NoScript(ValueError):
    """The simulator has no partner script for this template."""


def script_for(template: JourneyTemplate) -> ScriptFactory:
    try:
        return SCRIPTS[template.id]
    except KeyError:
        known = ", ".join(sorted(SCRIPTS))
        raise NoScript(f"cannot simulate {template.id!r}: scripted templates are {known}") from None


def _days(at: datetime, start: datetime) -> float:
    return round((at - start).total_seconds() / 86400, 6)


async def run_patient(
    template: JourneyTemplate,
    patient: PatientScenario,
    months: float,
    program: str = PROGRAM,
    start_at: datetime = START,
    ref: str | None = None,
) -> PatientResult:
    """One sampled patient's journey, run to its end or to the horizon. `ref`: the
    patient's pseudonym (default: one made from the index); it names the journey, whose
    id seeds the send-time jitter."""
    journey = prepare(template, patient, months, program, start_at, ref)
    done = await run_journey(journey.start, journey.runtime)
    return result_of(done, journey.world)


async def run_patients(
    template: JourneyTemplate, patients: Sequence[PatientScenario], months: float
) -> list[PatientResult]:
    """A cohort's journeys interleaved on one clock (CohortScheduler), in one event loop;
    each ends as it would alone (tested)."""
    scheduler = CohortScheduler()
    journeys = [prepare(template, patient, months) for patient in patients]
    for journey in journeys:
        scheduler.add(journey.start, journey.runtime)
    done = await scheduler.run()
    return [result_of(d, j.world) for j, d in zip(journeys, done, strict=True)]


@dataclass
class Prepared:
    """One patient's journey, ready to run: its start, its world, its runtime's maker."""

    start: JourneyStart
    world: World
    runtime: Callable[[JourneyState], VirtualRuntime]


def prepare(
    template: JourneyTemplate,
    patient: PatientScenario,
    months: float,
    program: str = PROGRAM,
    start_at: datetime = START,
    ref: str | None = None,
) -> Prepared:
    ref = ref or patient_ref(patient)
    book = ContactBook()
    book.add(ref, recipient(patient, program, start_at))
    horizon = start_at + timedelta(days=round(months * DAYS_PER_MONTH))
    world = World(patient, ref, program, start_at, horizon, book)
    script = script_for(template)(world)

    def runtime(state: JourneyState) -> VirtualRuntime:
        rt = VirtualRuntime(state, now=start_at, answers=script.answers)
        rt.contact_outcome = book.decide  # the production policy, over the book's ledger
        script.setup(rt)
        rt.later(horizon, lambda: rt.cancel("horizon") if rt.state.status == "running" else None)
        return rt

    return Prepared(journey_start(template, ref, program, script), world, runtime)


def journey_start(
    template: JourneyTemplate, patient_ref: str, program: str, script: Script
) -> JourneyStart:
    """The journey's start input, checked as `JourneyStart(...)` checks it (pseudonymous
    ids, known parameters) without validating the already validated template again for
    every patient (pydantic re-runs a model's after-validators on an instance)."""
    key = JourneyKey(patient_ref=patient_ref, program=program, business_key=script.business_key)
    unknown = set(script.params) - set(template.parameters)
    if unknown:
        raise ValueError(f"unknown template parameter(s): {sorted(unknown)}")
    return JourneyStart.model_construct(
        template=template, patient_ref=key.patient_ref, program=key.program,
        business_key=key.business_key, params=dict(script.params), context=dict(script.context),
    )  # fmt: skip


def result_of(done: Simulated, world: World) -> PatientResult:
    state, rt, t0 = done.state, done.runtime, world.start
    refill = state.refill
    decisions = [
        ContactRecord(
            day=_days(request.at, t0), step_id=request.step_id, attempt=request.attempt,
            action=decision.action, channel=decision.channel, reason=decision.reason,
        )
        for request, decision in world.book.decisions
    ]  # fmt: skip
    stages = [
        (n.summary.removeprefix("stage "), _days(n.at or t0, t0))
        for n in rt.notes
        if n.kind == "journey.milestone" and n.key.startswith("stage/")
    ]
    ended = state.completed_steps[-1].finished_at if state.completed_steps else None
    last = rt.now() if state.status == "cancelled" or ended is None else ended
    return PatientResult(
        index=world.patient.index,
        template=f"{state.template_id}@{state.template_version}",
        status=state.status,
        stage=state.stage,
        outcome_reason=state.outcome_reason,
        steps=[
            StepDone(s.step_id, s.visit, s.outcome, _days(s.finished_at or t0, t0))
            for s in rt.steps
        ],
        stages=stages,
        milestones={name: _days(at, t0) for name, at in state.milestones.items()},
        decisions=decisions,
        task_records=_tasks(rt, t0),
        pdc_by_year={y.year: y.pdc for y in refill.pdc_by_year} if refill else {},
        pdc_year_to_date=refill.pdc_year_to_date if refill else None,
        risk_level=refill.risk.level if refill and refill.risk else None,
        at_risk_episodes=refill.at_risk_episodes if refill else 0,
        cost=Counter(rt.counts),
        days=_days(min(last, world.horizon), t0),
    )


def _tasks(rt: VirtualRuntime, t0: datetime) -> list[TaskRecord]:
    opened: dict[str, dict[str, Any]] = {}
    for logged in rt.task_log:
        change = logged.change
        if change.change == "opened":
            opened[change.task_id] = {
                "task_id": change.task_id, "step_id": change.step_id, "role": change.role,
                "opened_day": _days(change.opened_at, t0),
                "due_day": _days(change.due_at, t0) if change.due_at else None,
                "closed_day": None, "closed_as": None, "escalated": False,
            }  # fmt: skip
        elif change.task_id in opened:
            task = opened[change.task_id]
            if change.change == "escalated":
                task["escalated"] = True
            else:
                task["closed_day"] = _days(logged.at, t0)
                task["closed_as"] = change.change
    return [TaskRecord(**t) for t in opened.values()]


def run_cohort(
    template: JourneyTemplate,
    scenario: CohortScenario,
    *,
    patients: int,
    months: float,
    seed: object,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Cohort:
    """Sample the cohort and run every patient's journey to the horizon.

    `workers` > 1 runs slices of patients in that many processes (nothing shared with
    this one but the arguments). Patient i depends on (seed, i) alone, so each process samples
    and runs its own indices, and the cohort is the one a single process gives, in
    patient order."""
    script_for(template)  # an unscripted template fails before any patient runs
    sample(scenario, min(patients, 1), seed, months)  # bad counts fail here, as `sample`
    cohort = Cohort(
        template=f"{template.id}@{template.version}", scenario=scenario.description,
        seed=str(seed), months=months,
    )  # fmt: skip
    began = time.perf_counter()
    if workers > 1 and patients > 1:
        cohort.patients = _run_in_processes(
            template, scenario, patients, months, seed, progress, workers
        )
    else:
        sampled = sample(scenario, patients, seed, months)
        for first in range(0, patients, BATCH):
            batch = sampled[first : first + BATCH]
            cohort.patients += asyncio.run(run_patients(template, batch, months))
            if progress is not None:
                progress(len(cohort.patients))
    cohort.seconds = time.perf_counter() - began
    return cohort


# -- several processes -------------------------------------------------------------------
_Slice = tuple[JourneyTemplate, CohortScenario, object, float, range]


def _worker_started() -> None:
    # A worker only runs journeys: collect less often (its long-lived objects, modules
    # and templates, are frozen out of collections). No journey reads the collector.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_slice(job: _Slice) -> list[PatientResult]:
    """One worker's slice of patient indices, each sampled and run as in one process."""
    template, scenario, seed, months, indices = job

    patients = [sample_patient(scenario, seed, i, months) for i in indices]
    return asyncio.run(run_patients(template, patients, months))


def _run_in_processes(
    template: JourneyTemplate,
    scenario: CohortScenario,
    patients: int,
    months: float,
    seed: object,
    progress: Callable[[int], None] | None,
    workers: int,
) -> list[PatientResult]:
    # Slices small enough to even out slow and quick patients across the processes,
    # large enough that handing them out costs nothing next to running them.
    size = max(1, min(50, patients // (workers * 8)))
    jobs: list[_Slice] = [
        (template, scenario, seed, months, range(first, min(first + size, patients)))
        for first in range(0, patients, size)
    ]
    results: list[PatientResult] = []
    # Forked when nothing else runs here (quick to start: the modules are loaded), else
    # spawned (forking a process with threads, a Temporal client's say, is not safe).
    # Either way a worker's patients depend on (seed, index) alone.
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(method)
    with context.Pool(min(workers, len(jobs)), initializer=_worker_started) as pool:
        for done in pool.imap(_run_slice, jobs):  # in slice order, as they finish
            results.extend(done)
            if progress is not None:
                progress(len(results))
    return results
