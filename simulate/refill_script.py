"""refill_adherence's world for one sampled patient: the partners answer as the sandbox
does (simulate/sandbox_partners.py: the pharmacy's refill program sends each dispense at
the sampled day, the payer answers benefits and re-authorization, the copay program
enrolls), the hub's staff work the tasks the watch opens (simulate/people.py), and the
patient may opt out of messages."""

from __future__ import annotations

from datetime import timedelta

from simulate.people import People
from simulate.runtime import VirtualRuntime
from simulate.sandbox_partners import SandboxPartners
from simulate.script import Script, World

# The PA on file when the refill journey starts runs out this many days in.
PA_ON_FILE_DAYS = 150


def refill_script(world: World) -> Script:
    patient = world.patient

    people = People(world)

    def setup(rt: VirtualRuntime) -> None:
        people.observe_tasks(rt)  # the nurse calls, the office notes, the PA review
        if patient.opts_out and patient.opt_out_day is not None:
            rt.later(world.day(patient.opt_out_day), lambda: world.book.opt_out(world.patient_ref))

    return Script(
        business_key="refills",
        params={"days_supply": patient.days_supply},
        context={"timezone": patient.timezone, "plan_type": patient.plan_type,
                 "pa_expires_on": (world.start + timedelta(days=PA_ON_FILE_DAYS)).date()
                 .isoformat()},
        answers=SandboxPartners(world).answers(),
        setup=setup,
    )  # fmt: skip
