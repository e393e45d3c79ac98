"""What a template's partners and people do for one simulated patient.

A `Script` is how one journey of a template starts (business key, params, context) and
how the world answers it: a scripted answer per partner action, and `setup`, which
schedules what comes unasked (callbacks, a patient's opt-out, a nurse completing a task)
on the journey's VirtualRuntime. Each template the simulator can run has a script
factory (simulate/cohort.py, SCRIPTS), written to behave as the sandbox does for the
same sampled patient, so the simulator and a real run can be compared (fidelity test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.contact_policy import ConsentFacts, PatientFacts
from simulate.cohort_scenario import PatientScenario
from simulate.contacts import ContactBook, Recipient
from simulate.runtime import Answer, VirtualRuntime

START = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
PROGRAM = "simulated"
PHONE = "+15555550100"


@dataclass(frozen=True)
class World:
    """Where a patient's journey runs: its clock, horizon and contact ledger."""

    patient: PatientScenario
    patient_ref: str
    program: str
    start: datetime
    horizon: datetime
    book: ContactBook

    def day(self, offset: float) -> datetime:
        return self.start + timedelta(days=offset)


@dataclass
class Script:
    business_key: str | None
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    setup: Callable[[VirtualRuntime], None] = lambda rt: None


ScriptFactory = Callable[[World], Script]


def patient_ref(patient: PatientScenario) -> str:
    return f"pt-sim{patient.index:06d}"


def recipient(patient: PatientScenario, program: str, start: datetime = START) -> Recipient:
    """A patient with a mobile number, SMS consent for treatment and adherence (the demo's),
    in the sampled zone."""
    facts = PatientFacts(
        addresses={"sms": PHONE, "voice": PHONE, "task": PHONE, "email": None, "push": None},
        timezone=patient.timezone,
    )
    consents = [
        ConsentFacts(channel="sms", address=PHONE, purpose=purpose, program=program,
                     granted_at=start - timedelta(days=30))
        for purpose in ("treatment", "adherence")
    ]  # fmt: skip
    return Recipient(facts, consents)
