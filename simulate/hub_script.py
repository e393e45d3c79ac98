"""specialty_start's world (the hub journey, v1 and v2) for one sampled patient: the
partners answer as the sandbox does (simulate/sandbox_partners.py); the hub's staff work
the journey's tasks and the patient confirms the first dose (simulate/people.py).
"""

from __future__ import annotations

from simulate.people import People
from simulate.sandbox_partners import SandboxPartners
from simulate.script import Script, World


def hub_script(world: World) -> Script:
    partners, people = SandboxPartners(world), People(world)
    patient = world.patient
    return Script(
        business_key=None,
        params={"days_supply": patient.days_supply},
        context={"timezone": patient.timezone, "plan_type": patient.plan_type},
        answers=partners.answers(),
        setup=people.observe_tasks,
    )
