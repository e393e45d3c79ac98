"""A cohort of refill journeys on the virtual clock: the production interpreter, the
production refill_watch step and the production contact policy (ContactBook), with
partners scripted from each patient's sampled scenario.

    cohort = run_cohort(get_template("refill_adherence"), load_scenario("typical"),
                        patients=200, months=12, seed=7)

Each patient runs alone on its own virtual clock: journeys of different patients share
nothing the policy counts (caps are per person), so running them one after another
gives what interleaving them would. Only refill_adherence is scripted so far: the hub
journey's partners (consent, PA turnaround, the pharmacy's claim) come next, as do the
report, the CLI and the speed the issue asks for (this runs about 6-15 patient-years a
second today).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.actions import PartnerCall
from domain.contact_policy import ConsentFacts, PatientFacts
from domain.journey import JourneyStart, JourneyState
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate
from simulate.cohort_scenario import CohortScenario, PatientScenario, sample
from simulate.contacts import ContactBook, Recipient
from simulate.runtime import VirtualRuntime, run_journey

START = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
PROGRAM = "simulated"
GROUP = "therapy"
PHONE = "+15555550100"


@dataclass
class PatientResult:
    index: int
    status: str
    stage: str
    outcome_reason: str | None
    pdc_by_year: dict[int, float]
    pdc_year_to_date: float | None
    risk_level: str | None
    contacts: Counter[str]  # "sent:sms", "deferred:quiet_hours", "suppressed:opted_out"
    tasks: Counter[str]  # role → tasks opened
    at_risk_episodes: int


@dataclass
class Cohort:
    template: str
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
        values = [p.pdc_year_to_date for p in self.patients if p.pdc_year_to_date is not None]
        return sum(v >= 0.8 for v in values) / len(values) if values else None


def patient_ref(patient: PatientScenario) -> str:
    return f"pt-sim{patient.index:06d}"


def recipient(patient: PatientScenario, program: str) -> Recipient:
    """A patient with a mobile number and an email, SMS consent for treatment and
    adherence (the demo's), in the sampled zone."""
    facts = PatientFacts(
        addresses={"sms": PHONE, "voice": PHONE, "task": PHONE, "email": None, "push": None},
        timezone=patient.timezone,
    )
    consents = [
        ConsentFacts(channel="sms", address=PHONE, purpose=purpose, program=program,
                     granted_at=START - timedelta(days=30))
        for purpose in ("treatment", "adherence")
    ]  # fmt: skip
    return Recipient(facts, consents)


def dispensed(patient: PatientScenario, day: int, n: int, rx: str) -> PartnerEvent:
    handed = START + timedelta(days=day)
    return PartnerEvent(
        event_id=f"sim-{patient.index}-{n}", type="pharmacy.dispensed", correlation_key=rx,
        occurred_at=handed,
        data={"rx_id": rx, "dispense_id": f"md-{patient.index}-{n}",
              "dispense_status": "completed", "is_fill": True,
              "days_supply": patient.days_supply, "dispensed_at": handed.isoformat(),
              "drug_groups": [GROUP]},
    )  # fmt: skip


def answers(patient: PatientScenario) -> dict[str, Any]:
    """The partners this patient meets, as the sandbox would answer them for it."""
    rx = f"RX-SIM-{patient.index}"
    return {
        "pharmacy.enroll_refills": {"rx_id": rx},
        "payer.verify_benefits": {
            "coverage_active": True,
            "pa_required": patient.pa_required,
            "plan_type": patient.plan_type,
        },
        "payer.submit_prior_auth": _prior_auth(patient),
        "copay.enroll": {"enrollment_id": f"CP-{patient.index}", "outcome": "approved"},
    }


def _prior_auth(
    patient: PatientScenario,
) -> Callable[[PartnerCall, VirtualRuntime], dict[str, Any]]:
    def answer(call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        approved = patient.pa.endswith("approve")
        expires = (rt.now() + timedelta(days=365)).date().isoformat()
        return {"pa_number": f"PA-{patient.index}-{len(rt.calls)}",
                "outcome": "approved" if approved else "denied",
                "expires_on": expires if approved else None}  # fmt: skip

    return answer


async def run_patient(
    template: JourneyTemplate, patient: PatientScenario, months: float, program: str = PROGRAM
) -> PatientResult:
    ref = patient_ref(patient)
    book = ContactBook()
    book.add(ref, recipient(patient, program))
    horizon = START + timedelta(days=round(months * 365.25 / 12))
    rx = f"RX-SIM-{patient.index}"

    def runtime(state: JourneyState) -> VirtualRuntime:
        rt = VirtualRuntime(state, now=START, answers=answers(patient))
        rt.contact_outcome = book.decide  # the production policy, over the book's ledger
        for n, day in enumerate(patient.refill_days):
            at = START + timedelta(days=day)
            if at < horizon:
                rt.deliver(dispensed(patient, day, n, rx), at)
        if patient.opts_out and patient.opt_out_day is not None:
            rt.later(START + timedelta(days=patient.opt_out_day), lambda: book.opt_out(ref))
        rt.later(horizon, lambda: rt.cancel("horizon") if state.status == "running" else None)
        return rt

    start = JourneyStart(
        template=template, patient_ref=ref, program=program, business_key="refills",
        params={"days_supply": patient.days_supply},
        context={"timezone": patient.timezone, "plan_type": patient.plan_type,
                 "pa_expires_on": (START + timedelta(days=150)).date().isoformat()},
    )  # fmt: skip
    done = await run_journey(start, runtime)
    state, rt = done.state, done.runtime
    refill = state.refill
    contacts: Counter[str] = Counter()
    for _, decision in book.decisions:
        what = decision.channel if decision.action == "send" else decision.reason
        contacts[f"{decision.action}:{what}"] += 1
    tasks = Counter(c.role for c in rt.task_changes if c.change == "opened")
    return PatientResult(
        index=patient.index,
        status=state.status,
        stage=state.stage,
        outcome_reason=state.outcome_reason,
        pdc_by_year={y.year: y.pdc for y in refill.pdc_by_year} if refill else {},
        pdc_year_to_date=refill.pdc_year_to_date if refill else None,
        risk_level=refill.risk.level if refill and refill.risk else None,
        contacts=contacts,
        tasks=tasks,
        at_risk_episodes=refill.at_risk_episodes if refill else 0,
    )


def run_cohort(
    template: JourneyTemplate,
    scenario: CohortScenario,
    *,
    patients: int,
    months: float,
    seed: object,
    progress: Callable[[int], None] | None = None,
) -> Cohort:
    """Sample the cohort and run every patient's journey to the horizon."""
    cohort = Cohort(template=f"{template.id}@{template.version}", months=months)
    began = time.perf_counter()

    async def run_all() -> None:
        for patient in sample(scenario, patients, seed, months):
            cohort.patients.append(await run_patient(template, patient, months))
            if progress is not None:
                progress(len(cohort.patients))

    asyncio.run(run_all())
    cohort.seconds = time.perf_counter() - began
    return cohort
