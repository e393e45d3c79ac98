"""The simulator runs what production runs: a sampled cohort, twice.

Once in the simulator (simulate/cohort.py: the interpreter, step handlers and contact
policy on a virtual clock, partners scripted from each patient's sampled scenario), and
once as real TherapyJourney workflows on the dev server with time skipping, through
the real worker, receiver, store and contact gate, against the sandbox driven by the
same sampled scenario on a stepped clock (tests/fidelity/driver.py). Per patient, the
two must agree on the step sequence and outcomes, every contact decision and every task
opened; any difference fails with a readable diff.

To look at one difference: PITWALL_FIDELITY_ONLY=<patient index> runs that patient alone
(PITWALL_FIDELITY_PATIENTS=<n> a smaller cohort).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.journey import JourneyStart, JourneyState
from domain.template import JourneyTemplate
from domain.template_loader import get_template
from simulate.cohort import SCRIPTS, PatientResult, run_patient
from simulate.cohort_scenario import DAYS_PER_MONTH, PatientScenario, load_scenario, sample
from simulate.contacts import ContactBook
from simulate.script import PHONE, World
from tests.e2e.conftest import PROGRAM, Stack
from tests.fidelity.driver import Driven, LockStep

PATIENTS = int(os.environ.get("PITWALL_FIDELITY_PATIENTS", "20"))
MONTHS = 4
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
    scenario = await httpx.AsyncClient().put(
        f"{stack.sandbox_url}/_sandbox/scenarios/{ref}", json=sandbox_scenario(patient)
    )
    scenario.raise_for_status()
    return ref


async def run_real(
    env: Any, stack: Stack, template: JourneyTemplate, patient: PatientScenario
) -> Real:
    ref = await register(stack, patient)
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as sandbox:
        now = datetime.now(UTC)
        (
            await sandbox.post(f"/_sandbox/clock/{ref}", json={"now": now.isoformat()})
        ).raise_for_status()
        horizon_days = round(MONTHS * DAYS_PER_MONTH)
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
        driver = LockStep(env, stack.journeys, sandbox, ack.journey_id, ref, horizon)
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
    out += _list_diff("steps", sim["steps"], real["steps"])
    out += _list_diff("contact decisions", sim["contacts"], real["contacts"], timed=False)
    # A task's role is compared while it has not moved up its chain (the queue keeps the
    # role it is with now).
    sim_tasks = [(t[0], t[1], t[2] if not t[3] else "?", t[3], t[4]) for t in sim["tasks"]]
    out += _list_diff("tasks opened", sim_tasks, real["tasks"])
    if sim["pdc"] != real["pdc"]:
        out.append(f"  PDC by year: simulator {sim['pdc']} | real {real['pdc']}")
    return out


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


async def test_the_simulator_and_real_workflows_agree_patient_by_patient(
    skipping_env: Any, fidelity_stack: Stack
) -> None:
    template = get_template("refill_adherence")
    patients = sample(load_scenario("typical"), PATIENTS, SEED, MONTHS)
    if os.environ.get("PITWALL_FIDELITY_ONLY"):  # one patient, to look at a difference
        patients = [patients[int(os.environ["PITWALL_FIDELITY_ONLY"])]]
    reals = await asyncio.gather(
        *(run_real(skipping_env, fidelity_stack, template, p) for p in patients)
    )
    report: list[str] = []
    for real in reals:
        sim = await run_patient(
            template, real.patient, MONTHS, PROGRAM, real.started_at, real.patient_ref
        )
        diff = differences(sim_view(sim), real_view(fidelity_stack, real))
        if diff:
            report.append(f"patient {real.patient.index} ({real.patient.timezone}):")
            report.extend(diff)
    assert not report, "the simulator and the real run differ:\n" + "\n".join(report)
    # The cohort was not trivial: it sent reminders and opened tasks, on both sides.
    assert sum(len(r.driven.steps) for r in reals) > len(patients) * 5
