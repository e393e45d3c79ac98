"""The simulator runs what production runs: a sampled cohort, twice.

Once in the simulator (simulate/cohort.py: the interpreter, step handlers and contact
policy on a virtual clock, partners scripted from each patient's sampled scenario), and
once as real TherapyJourney workflows on the dev server with time skipping, through
the real worker, receiver, store and contact gate, against the sandbox driven by the
same sampled scenario on a stepped clock (tests/fidelity/driver.py). Per patient, the
two must agree on the step sequence and outcomes, every contact decision and every task
opened; any difference fails with a readable diff. Two templates: refill_adherence, and
the hub journey (specialty_start v2). The people (hub staff, the patient) act on the
simulator's own agenda in the real run too, through the task and events APIs.

To look at one difference: PITWALL_FIDELITY_ONLY=<patient index> runs that patient alone
(PITWALL_FIDELITY_PATIENTS=<n> a smaller cohort).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from domain.journey import JourneyStart, JourneyState
from domain.template import JourneyTemplate
from domain.template_loader import get_template
from simulate.cohort import SCRIPTS, PatientResult, run_patient
from simulate.cohort_scenario import DAYS_PER_MONTH, PatientScenario, load_scenario, sample
from simulate.contacts import ContactBook
from simulate.people import FIRST_DOSE, People
from simulate.script import PHONE, World
from store.tasks import OPEN
from tests.e2e.conftest import PROGRAM, Stack
from tests.fidelity.driver import Driven, LockStep, PersonAction

PATIENTS = int(os.environ.get("PITWALL_FIDELITY_PATIENTS", "20"))
SEED = "fidelity-1"
# Journey seconds per scenario day on the stepped clock: the scenario's own days.
DAY_SECONDS = 86400.0
# Real and simulated clocks agree to a fraction of a second; times compare to this.
TIME_TOLERANCE_DAYS = 0.001


@dataclass
class Real:
    patient: PatientScenario
    patient_ref: str
    started_at: datetime
    driven: Driven


def sandbox_scenario(patient: PatientScenario) -> dict[str, Any]:
    return {
        **patient.sandbox_scenario(DAY_SECONDS),
        "clock": "stepped",
        "sms_status_interval_seconds": 0,  # a receipt at once, as the simulator has it
    }


async def register(stack: Stack, patient: PatientScenario) -> str:
    """The patient as the simulator's contact book has them: a mobile number, SMS
    consent for treatment and adherence in the program, in the sampled zone."""
    patient_id = f"fid-{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        put = await api.put(
            f"/v1/patients/{patient_id}",
            json={"telecom": [{"system": "phone", "value": PHONE}], "timezone": patient.timezone},
        )
        assert put.status_code == 201, put.text
        for purpose in ("treatment", "adherence"):
            grant = await api.post(
                f"/v1/patients/{patient_id}/consents",
                json={"channel": "sms", "purpose": purpose, "program": PROGRAM},
            )
            assert grant.status_code == 201, grant.text
    ref = str(put.json()["patient_ref"])
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as sandbox:
        scenario = await sandbox.put(f"/_sandbox/scenarios/{ref}", json=sandbox_scenario(patient))
    scenario.raise_for_status()
    return ref


class RealPeople:
    """The hub's staff and the patient in the real run, on the simulator's agenda
    (People: the same draws in the same order): a task the queue shows is completed
    through the task API when its draw says, and after the onboarding task the patient
    confirms the first dose through the events API."""

    def __init__(self, stack: Stack, world: World, journey_id: str) -> None:
        self.stack, self.ref, self.journey_id = stack, world.patient_ref, journey_id
        self.hub = People(world)
        self.seen: set[int] = set()
        self.agenda: dict[str, PersonAction] = {}

    async def __call__(self) -> list[PersonAction]:
        for task in self.stack.store.tasks.for_patient(self.ref):
            if task.id is None or task.id in self.seen:
                continue
            self.seen.add(task.id)
            done = self.hub.completion_at(task.owner_role, task.opened_at)
            if done is not None:
                self.agenda[f"task/{task.id}"] = PersonAction(
                    done, partial(self.complete, task.id, task.step_id or "", done)
                )
        return list(self.agenda.values())

    async def complete(self, task_id: int, step_id: str, at: datetime) -> None:
        del self.agenda[f"task/{task_id}"]
        task = self.stack.store.tasks.get(task_id)
        if task is None or task.status not in OPEN:
            return  # closed meanwhile (given up, cancelled): nothing to complete
        async with self.stack_api() as api:
            done = await api.post(f"/v1/tasks/{task_id}/complete", json={})
        assert done.status_code == 200, done.text
        dose = self.hub.first_dose_at(step_id, at)
        if dose is not None:
            self.agenda[f"dose/{task_id}"] = PersonAction(dose, partial(self.dose, task_id))

    async def dose(self, task_id: int) -> None:
        del self.agenda[f"dose/{task_id}"]
        async with self.stack_api() as api:
            await api.post(
                f"/v1/journeys/{self.journey_id}/events",
                json={"event_id": f"first-dose-{task_id}", "type": FIRST_DOSE,
                      "correlation_key": f"onboarding-{self.ref}"},
            )  # fmt: skip

    def stack_api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.stack.receiver_url, headers=self.stack.admin_headers)


async def run_real(
    env: Any, stack: Stack, template: JourneyTemplate, patient: PatientScenario, months: float
) -> Real:
    ref = await register(stack, patient)
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as sandbox:
        now = datetime.now(UTC)
        clock = await sandbox.post(f"/_sandbox/clock/{ref}", json={"now": now.isoformat()})
        clock.raise_for_status()
        horizon_days = round(months * DAYS_PER_MONTH)
        world = World(patient, ref, PROGRAM, now, now + timedelta(days=horizon_days), ContactBook())
        script = SCRIPTS[template.id](world)
        ack = await stack.journeys.start(
            JourneyStart(
                template=template, patient_ref=ref, program=PROGRAM,
                business_key=script.business_key, params=script.params, context=script.context,
            )
        )  # fmt: skip
        state = await stack.journeys.state(ack.journey_id)
        assert state.started_at is not None
        horizon = state.started_at + timedelta(days=horizon_days)
        people = RealPeople(stack, world, ack.journey_id)  # staff work its tasks
        driver = LockStep(env, stack.journeys, sandbox, ack.journey_id, ref, horizon, people)
        driven = await driver.run()
    return Real(patient, ref, state.started_at, driven)


# -- what each side did, in one shape ---------------------------------------------------
def _day(at: datetime, start: datetime) -> float:
    return (at - start).total_seconds() / 86400


def sim_view(sim: PatientResult) -> dict[str, Any]:
    return {
        "outcome": (sim.status, sim.stage, sim.outcome_reason),
        "steps": [(f"{s.step_id}#{s.visit}: {s.outcome}", s.day) for s in sim.steps],
        "contacts": [(f"{d.step_id}/{d.attempt}", d.label) for d in sim.decisions],
        "tasks": [
            (t.task_id, t.step_id, t.role, t.escalated, t.opened_day) for t in sim.task_records
        ],
        "pdc": sim.pdc_by_year,
    }


SENT = {"sending", "sent", "delivered", "unknown"}


def real_view(stack: Stack, real: Real) -> dict[str, Any]:
    state: JourneyState = real.driven.state
    t0 = real.started_at
    refill = state.refill
    return {
        "outcome": (state.status, state.stage, state.outcome_reason),
        "steps": [
            (f"{s.step_id}#{s.visit}: {s.outcome}", _day(s.finished_at or t0, t0))
            for s in real.driven.steps
        ],
        "contacts": real_decisions(stack, real.patient_ref),
        "tasks": real_tasks(stack, real.patient_ref, t0),
        "pdc": {y.year: y.pdc for y in refill.pdc_by_year} if refill else {},
    }


def real_decisions(stack: Stack, patient_ref: str) -> list[tuple[str, str]]:
    """Each decision the gate took, in order: a ledger row's trail says send (sending,
    then sent / delivered: one decision), defer (each time) or suppress."""
    decided: list[tuple[int, tuple[str, str]]] = []
    for row in stack.store.ledger.for_patient(patient_ref):
        key = f"{row.step_id}/{row.attempt}"
        went = False
        for event in stack.store.ledger.events(row.idempotency_key):
            label = None
            if event.status in SENT and not went:
                label, went = f"send:{row.channel}", True
            elif event.status == "deferred":
                label = f"defer:{event.reason}"
            elif event.status == "suppressed":
                label = f"suppress:{event.reason}"
            if label is not None:
                decided.append((event.id or 0, (key, label)))
    return [decision for _, decision in sorted(decided)]


def real_tasks(
    stack: Stack, patient_ref: str, t0: datetime
) -> list[tuple[str | None, str | None, str, bool, float]]:
    tasks = []
    for task in stack.store.tasks.for_patient(patient_ref):
        trail = stack.store.tasks.trail(task.id or 0)
        escalated = any(e.action.startswith(("escalated", "reminded")) for e in trail)
        role = "?" if escalated else task.owner_role  # the role it opened with, if still
        opened = _day(task.opened_at, t0)
        tasks.append((task.journey_task_id, task.step_id, role, escalated, opened))
    return tasks


def differences(sim: dict[str, Any], real: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if sim["outcome"] != real["outcome"]:
        out.append(f"  outcome: simulator {sim['outcome']} | real {real['outcome']}")
        for side, view in (("simulator", sim), ("real", real)):
            last = ", ".join(_shown(step, True) for step in view["steps"][-3:])
            out.append(f"    {side}'s last steps: {last}")
    out += _list_diff("steps", in_bursts(sim["steps"]), in_bursts(real["steps"]))
    out += _list_diff("contact decisions", sim["contacts"], real["contacts"], timed=False)
    # A task's role is compared while it has not moved up its chain (the queue keeps the
    # role it is with now).
    sim_tasks = [(t[0], t[1], t[2] if not t[3] else "?", t[3], t[4]) for t in sim["tasks"]]
    out += _list_diff("tasks opened", sim_tasks, real["tasks"])
    if sim["pdc"] != real["pdc"]:
        out.append(f"  PDC by year: simulator {sim['pdc']} | real {real['pdc']}")
    return out


def in_bursts(steps: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Steps that finished at one instant, by name: parallel branches finish in the
    order their partners answer, which no journey code decides."""
    out: list[tuple[str, float]] = []
    burst: list[tuple[str, float]] = []
    for step in steps:
        if burst and step[1] - burst[0][1] > TIME_TOLERANCE_DAYS:
            out += sorted(burst)
            burst = []
        burst.append(step)
    return out + sorted(burst)


def _list_diff(
    what: str, sim: list[tuple[Any, ...]], real: list[tuple[Any, ...]], timed: bool = True
) -> list[str]:
    """Entries compared on what they are and, `timed`, when (their last field, a day,
    to TIME_TOLERANCE_DAYS); shown around the first difference."""

    def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        if not timed:
            return a == b
        return a[:-1] == b[:-1] and abs(a[-1] - b[-1]) <= TIME_TOLERANCE_DAYS

    first = next(
        (n for n, (a, b) in enumerate(zip(sim, real, strict=False)) if not same(a, b)),
        min(len(sim), len(real)),
    )
    if first == len(sim) == len(real):
        return []
    lines = [f"  {what}: {len(sim)} simulated, {len(real)} real; first difference at #{first}"]
    for n in range(max(first - 2, 0), min(first + 4, max(len(sim), len(real)))):
        a = _shown(sim[n], timed) if n < len(sim) else "-"
        b = _shown(real[n], timed) if n < len(real) else "-"
        mark = "  " if n < first else "!="
        lines.append(f"    {mark} #{n}: simulator {a} | real {b}")
    return lines


def _shown(entry: tuple[Any, ...], timed: bool) -> str:
    if not timed:
        return " ".join(map(str, entry))
    *what, day = entry
    return f"{' '.join(map(str, what))} (day {day:.3f})"


# refill_adherence over four months (reminders, AT_RISK and back, re-authorization);
# the hub journey over three (consent, PA courses, claims, shipment, onboarding, tasks).
COHORTS = [("refill_adherence", None, 4.0), ("specialty_start", 2, 3.0)]


@pytest.mark.parametrize(("template_id", "version", "months"), COHORTS,
                         ids=[c[0] for c in COHORTS])  # fmt: skip
async def test_the_simulator_and_real_workflows_agree_patient_by_patient(
    skipping_env: Any, fidelity_stack: Stack, template_id: str, version: int | None, months: float
) -> None:
    template = get_template(template_id, version=version)
    patients = sample(load_scenario("typical"), PATIENTS, SEED, months)
    if os.environ.get("PITWALL_FIDELITY_ONLY"):  # one patient, to look at a difference
        patients = [patients[int(os.environ["PITWALL_FIDELITY_ONLY"])]]
    reals = await asyncio.gather(
        *(run_real(skipping_env, fidelity_stack, template, p, months) for p in patients)
    )
    report: list[str] = []
    for real in reals:
        sim = await run_patient(
            template, real.patient, months, PROGRAM, real.started_at, real.patient_ref
        )
        diff = differences(sim_view(sim), real_view(fidelity_stack, real))
        if diff:
            report.append(f"patient {real.patient.index} ({real.patient.timezone}):")
            report.extend(diff)
    assert not report, "the simulator and the real run differ:\n" + "\n".join(report)
    # The cohort was not trivial: it messaged patients and opened tasks, on both sides.
    assert sum(len(r.driven.steps) for r in reals) > len(patients) * 5
    assert any(real_tasks(fidelity_stack, r.patient_ref, r.started_at) for r in reals)
