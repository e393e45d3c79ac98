"""Demo patients: sandbox scenarios, contact details and consents, and their journeys.

Everything here is idempotent, so running the stack again finds the same journeys.
Patient refs are pseudonymous; the contact details are fictional (555 numbers,
example.com), and they live in the store, never in the journey.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from client.journeys import JourneyClient
from domain.journey import StartAck
from domain.template import JourneyTemplate
from store.patients import PatientDetails, PatientDirectory

PROGRAM = "demo-program"


@dataclass(frozen=True)
class DemoPatient:
    ref: str
    story: str
    scenario: dict[str, Any]
    phone: str
    sms_consent: bool = True
    context: dict[str, Any] = field(default_factory=lambda: {"timezone": "America/New_York"})


DEMO_PATIENTS = (
    DemoPatient("pt-demo-approve", "PA approved at once", {"pa": "approve"}, "+15555550101"),
    DemoPatient(
        "pt-demo-pended",
        "PA pended ~6 days, then approved by payer callback",
        {"pa": "pend_approve", "pend_seconds": 25},
        "+15555550102",
    ),
    DemoPatient(
        "pt-demo-appeal",
        "PA denied, appeal approved after a pend",
        {"pa": "deny_appeal_approve", "appeal_pend_seconds": 15},
        "+15555550103",
    ),
    DemoPatient(
        "pt-demo-no-pa",
        "No PA required; pharmacy callbacks duplicated and out of order",
        {"pa_required": False, "duplicate_callbacks": True, "out_of_order": True},
        "+15555550104",
    ),
    DemoPatient(
        "pt-demo-outage",
        "Payer down (503) for 20 s; retried until it recovers",
        {"outage": {"service": "payer", "seconds": 20, "status": 503}},
        "+15555550105",
    ),
    DemoPatient(
        "pt-demo-no-consent",
        "No SMS consent on file: welcome text suppressed, journey flagged",
        {"pa": "approve"},
        "+15555550106",
        sms_consent=False,
    ),
)


def seed_store(directory: PatientDirectory) -> None:
    for patient in DEMO_PATIENTS:
        directory.patients.upsert(
            patient.ref,
            PatientDetails(
                phone=patient.phone,
                email=f"{patient.ref}@example.com",
                timezone=patient.context["timezone"],
            ),
        )
        if patient.sms_consent:
            for purpose in ("treatment", "adherence"):
                directory.grant_consent(patient.ref, "sms", purpose, PROGRAM)


def seed_sandbox(sandbox_url: str) -> None:
    with httpx.Client(base_url=sandbox_url, timeout=10) as http:
        for patient in DEMO_PATIENTS:
            http.put(f"/_sandbox/scenarios/{patient.ref}", json=patient.scenario).raise_for_status()


async def start_journeys(
    journeys: JourneyClient, template: JourneyTemplate, time_scale: float
) -> list[tuple[DemoPatient, StartAck]]:
    started = []
    for patient in DEMO_PATIENTS:
        ack = await journeys.start(
            template,
            patient_ref=patient.ref,
            program=PROGRAM,
            context=patient.context,
            time_scale=time_scale,
        )
        started.append((patient, ack))
    return started
