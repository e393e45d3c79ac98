"""refill_adherence's world for one sampled patient: the pharmacy's refill program sends
each dispense at the sampled day (as the sandbox's refill enrollment does), the payer
answers benefits and re-authorization, the copay program enrolls, and the patient may
opt out of messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from domain.local_time import local_date
from domain.partners import PartnerEvent
from simulate.cohort_scenario import PatientScenario
from simulate.payer_script import payer_answers
from simulate.runtime import VirtualRuntime
from simulate.script import Script, World

GROUP = "therapy"
HANDOVER_TIME = time(15, 0)  # the sandbox's (sandbox/app.py)


def rx_of(patient: PatientScenario) -> str:
    return f"RX-SIM-{patient.index}"


def handed_over(world: World, day: int) -> datetime:
    """As the sandbox's refill program has it: at HANDOVER_TIME (UTC) on the enrollment's
    starts_on (the journey's local date at its start) plus `day`."""
    starts_on = local_date(world.start, world.patient.timezone)
    return datetime.combine(starts_on + timedelta(days=day), HANDOVER_TIME, UTC)


def dispensed(world: World, day: int, n: int) -> PartnerEvent:
    patient, rx = world.patient, rx_of(world.patient)
    handed = handed_over(world, day)
    return PartnerEvent(
        event_id=f"sim-{patient.index}-{n}", type="pharmacy.dispensed", correlation_key=rx,
        occurred_at=handed,
        data={"rx_id": rx, "dispense_id": f"md-{patient.index}-{n}",
              "dispense_status": "completed", "is_fill": True,
              "days_supply": patient.days_supply, "dispensed_at": handed.isoformat(),
              "drug_groups": [GROUP]},
    )  # fmt: skip


def refill_script(world: World) -> Script:
    patient = world.patient

    def setup(rt: VirtualRuntime) -> None:
        for n, day in enumerate(patient.refill_days):
            if world.day(day) < world.horizon:
                rt.deliver(dispensed(world, day, n), world.day(day))
        if patient.opts_out and patient.opt_out_day is not None:
            rt.later(world.day(patient.opt_out_day), lambda: world.book.opt_out(world.patient_ref))

    return Script(
        business_key="refills",
        params={"days_supply": patient.days_supply},
        context={"timezone": patient.timezone, "plan_type": patient.plan_type,
                 "pa_expires_on": world.day(150).date().isoformat()},
        answers={"pharmacy.enroll_refills": {"rx_id": rx_of(patient)}, **payer_answers(patient)},
        setup=setup,
    )  # fmt: skip
