"""Demo patients: sandbox scenarios, contact details and consents, and their journeys.

Everything here is idempotent, so running the stack again finds the same journeys.
The demo registers its patients through the HTTP API, as a hub intake service would:
each has an id of the hub's own (`demo-approve`...) and Pitwall answers with its
pseudonym, which is all that journeys, partners and logs see. The contact details are
fictional (555 numbers, example.com) and live in the store, never in the journey.

Dev API keys (`ensure_dev_keys`): one with `admin` for you (curl, the client), one with
the `webhooks:*` scopes for the sandbox's callbacks. They are made once and kept in
`<data dir>/dev-api-keys.json` (mode 0600) so the same keys work after a restart; a key
that no longer verifies (database reset, revoked) is replaced.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from client.http import PitwallHttpClient
from contract.journeys import StartJourney
from contract.patients import ConsentGrantIn, ContactPoint, CoverageIn, PatientIn, PlanType
from domain.journey import StartAck
from store.api_keys import WEBHOOK_PARTNERS, ApiKeyRepository

PROGRAM = "demo-program"


@dataclass(frozen=True)
class DemoPatient:
    patient_id: str  # the hub's own id; Pitwall maps it to a pseudonym
    story: str
    scenario: dict[str, Any]
    phone: str
    shows: str  # the stage it is seen in (PitwallStage), once the stack has run a minute
    sms_consent: bool = True
    plan_type: PlanType = "commercial"  # the primary coverage: decides the copay card
    params: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=lambda: {"timezone": "America/New_York"})
    texts: tuple[str, ...] = ()  # what the patient texts once the journey runs
    hold: str | None = None  # put on hold with this reason once started
    template: str | None = None  # default: the hub journey
    business_key: str | None = None  # a second journey of the patient in the program
    time_scale: float | None = None  # default: the launcher's


# Refill journeys run a journey-day a second, and the sandbox pharmacy dispenses on the
# same clock (refill_day_seconds), so months of refills pass while you watch.
REFILL_DAY = 86400.0
REFILLS = "refills"
WEEKLY = {"days_supply": 7}


# Long waits keep each patient in its state while you look (a journey-day is 4 s):
# nobody works the hub's tasks here, so they escalate and mark needs-attention.
LONG = 3600.0
NO_BRIDGE = {"offers_bridge": False}

DEMO_PATIENTS = (
    DemoPatient(
        "demo-approve",
        "PA approved at once; copay card (commercial plan); shipped, delivered; waiting "
        "for the nurse's injection training",
        {"pa": "approve"},
        "+15555550101",
        shows="ONBOARDING",
    ),
    DemoPatient(
        "demo-missing-info",
        "Enrollment form incomplete: the office's task is reminded at 24 h and escalated "
        "to a case manager at 72 h",
        {"pa": "approve"},
        "+15555550108",
        shows="INTAKE_INCOMPLETE",
        params={"give_up_after": "365d"},
        context={"timezone": "America/New_York", "intake_missing": "prescriber_npi"},
    ),
    DemoPatient(
        "demo-pended",
        "PA pended by the payer; follow-up tasks to the reimbursement team",
        {"pa": "pend_approve", "pend_seconds": LONG},
        "+15555550102",
        shows="PA_PENDED",
        params=NO_BRIDGE,
    ),
    DemoPatient(
        "demo-info",
        "PA pended, then the payer asks for a progress note and labs: a task for the office",
        {"pa": "pend_info_approve", "pend_seconds": 3},
        "+15555550109",
        shows="ADDITIONAL_INFO_REQUESTED",
        params=NO_BRIDGE,
    ),
    DemoPatient(
        "demo-appeal",
        "PA denied; the appeal is with the payer",
        {"pa": "deny_appeal_approve", "appeal_pend_seconds": LONG},
        "+15555550103",
        shows="APPEAL_SUBMITTED",
        params=NO_BRIDGE,
    ),
    DemoPatient(
        "demo-bridge",
        "PA pended; a 14-day bridge supply shipped meanwhile",
        {"pa": "pend_approve", "pend_seconds": LONG},
        "+15555550110",
        shows="BRIDGE_SHIPPED",
    ),
    DemoPatient(
        "demo-free-drug",
        "PA denied, appeal upheld: a case manager evaluates the free-drug program",
        {"pa": "deny_appeal_deny", "appeal_pend_seconds": 2},
        "+15555550111",
        shows="FREE_DRUG_EVAL",
        params=NO_BRIDGE,
    ),
    DemoPatient(
        "demo-medicare",
        "Medicare Part D: no copay card (illegal); a case manager evaluates foundation help",
        {"pa_required": False, "plan_type": "medicare"},
        "+15555550112",
        shows="AFFORDABILITY_CHECK",
        plan_type="medicare",
    ),
    DemoPatient(
        "demo-copay",
        "Copay card enrolled; the specialty pharmacy is still working the claim",
        {"pa": "approve", "fill_after_seconds": LONG},
        "+15555550113",
        shows="SP_INTAKE",
    ),
    DemoPatient(
        "demo-on-hold",
        "On hold: the patient is in hospital (PitwallStage ON_HOLD until resumed)",
        {"pa": "pend_approve", "pend_seconds": LONG},
        "+15555550114",
        shows="ON_HOLD",
        params=NO_BRIDGE,
        hold="patient hospitalised",
    ),
    DemoPatient(
        "demo-no-pa",
        "No PA required; pharmacy callbacks duplicated and out of order",
        {"pa_required": False, "duplicate_callbacks": True, "out_of_order": True},
        "+15555550104",
        shows="ONBOARDING",
    ),
    DemoPatient(
        "demo-outage",
        "Payer down (503) for 20 s; retried until it recovers",
        {"outage": {"service": "payer", "seconds": 20, "status": 503}},
        "+15555550105",
        shows="ONBOARDING",
    ),
    DemoPatient(
        "demo-no-consent",
        "No consent for texts: no text goes; the hub gets a task to call instead",
        {"pa": "approve"},
        "+15555550106",
        shows="ONBOARDING",
        sms_consent=False,
    ),
    DemoPatient(
        "demo-stop",
        "Texts HELP (answered), then STOP while the PA is pended: one confirmation, and "
        "every later message suppressed",
        {"pa": "pend_approve", "pend_seconds": LONG},
        "+15555550107",
        shows="PA_PENDED",
        params=NO_BRIDGE,
        texts=("HELP", "STOP"),
    ),
    DemoPatient(
        "demo-on-therapy",
        "On therapy: a 28-day fill every 28 days; reminders 7, 3 and 1 days before each "
        "run-out; PDC 100%, risk low",
        {"refill_history": "on_time", "refill_cycles": 500, "refill_day_seconds": 1.0},
        "+15555550121",
        shows="ON_THERAPY",
        template="refill_adherence",
        business_key=REFILLS,
        time_scale=REFILL_DAY,
    ),
    DemoPatient(
        "demo-at-risk",
        "Three weekly fills, then none: AT_RISK a week after run-out, with a nurse call "
        "and a note to the prescriber's office",
        {"refill_history": "stopped", "refill_day_seconds": 1.0, **WEEKLY},
        "+15555550122",
        shows="AT_RISK",
        params={**WEEKLY, "discontinue_after": "3650d"},
        template="refill_adherence",
        business_key=REFILLS,
        time_scale=REFILL_DAY,
    ),
    DemoPatient(
        "demo-late",
        "Every weekly refill five days late, two PA setbacks and $200 a fill: refill risk "
        "high, so a nurse calls before each run-out and the copay card is re-checked",
        {
            "refill_history": "late",
            "refill_late_days": 5,
            "refill_cycles": 500,
            "refill_day_seconds": 1.0,
            **WEEKLY,
        },
        "+15555550123",
        shows="ON_THERAPY",
        params=WEEKLY,
        context={
            "timezone": "America/New_York",
            "pa_friction": 2,
            "out_of_pocket": 200,
            "plan_type": "commercial",
        },
        template="refill_adherence",
        business_key=REFILLS,
        time_scale=REFILL_DAY,
    ),
    DemoPatient(
        "demo-discontinued",
        "Three weekly fills, then nothing for two weeks past run-out: discontinued, lost "
        "to follow-up",
        {"refill_history": "stopped", "refill_day_seconds": 1.0, **WEEKLY},
        "+15555550124",
        shows="DISCONTINUED",
        params={**WEEKLY, "discontinue_after": "14d"},
        template="refill_adherence",
        business_key=REFILLS,
        time_scale=REFILL_DAY,
    ),
)


async def register(api: PitwallHttpClient, patient: DemoPatient) -> str:
    """Register the patient and its consents over HTTP; returns Pitwall's pseudonym."""
    registered = await api.register_patient(
        patient.patient_id,
        PatientIn(
            telecom=[
                ContactPoint(system="phone", value=patient.phone, use="mobile"),
                ContactPoint(system="email", value=f"{patient.patient_id}@example.com"),
            ],
            timezone=str(patient.context["timezone"]),
            language="en",
            coverage=[CoverageIn(payor="payer-sandbox", plan_type=patient.plan_type)],
        ),
    )
    if patient.sms_consent:
        for purpose in ("treatment", "adherence"):
            await api.grant_consent(
                patient.patient_id,
                ConsentGrantIn(channel="sms", purpose=purpose, program=PROGRAM),
            )
    return registered.patient_ref


async def seed_sandbox(sandbox_url: str, patient_ref: str, scenario: dict[str, Any]) -> None:
    """The sandbox scripts partners per patient, by the pseudonym they receive."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        (await http.put(f"/_sandbox/scenarios/{patient_ref}", json=scenario)).raise_for_status()


@dataclass(frozen=True)
class DemoJourney:
    patient: DemoPatient
    patient_ref: str
    ack: StartAck


async def start_journeys(
    api: PitwallHttpClient, sandbox_url: str, template_id: str, time_scale: float
) -> list[DemoJourney]:
    """Register, script the sandbox, start: all through the HTTP API (safe to rerun)."""
    started = []
    for patient in DEMO_PATIENTS:
        patient_ref = await register(api, patient)
        await seed_sandbox(sandbox_url, patient_ref, patient.scenario)
        ack = await api.start(
            StartJourney(
                template=patient.template or template_id,
                patient_id=patient.patient_id,
                program=PROGRAM,
                business_key=patient.business_key,
                params=patient.params,
                context=patient.context,
                time_scale=patient.time_scale or time_scale,
            )
        )
        if patient.hold and ack.created:
            await api.pause(ack.journey_id, patient.hold)
        started.append(DemoJourney(patient, patient_ref, ack))
    for patient in DEMO_PATIENTS:
        for body in patient.texts:
            await text_from(sandbox_url, patient.phone, body)
    return started


async def text_from(sandbox_url: str, phone: str, body: str) -> str:
    """The patient's text, posted by the sandbox's carrier to our signed SMS webhook."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        sent = await http.post("/_sandbox/sms/inbound", json={"from": phone, "body": body})
        sent.raise_for_status()
        return str(sent.json()["message_sid"])


DEV_KEYS: dict[str, list[str]] = {
    "dev-admin": ["admin"],
    "dev-sandbox-partners": [f"webhooks:{p}" for p in WEBHOOK_PARTNERS],
}


@dataclass(frozen=True)
class DevKeys:
    admin: str  # every scope: for curl and the HTTP client
    partners: str  # webhooks:* — the sandbox's callbacks (and the SMS StatusCallback URL)


def ensure_dev_keys(keys: ApiKeyRepository, path: Path) -> DevKeys:
    """The local stack's keys: reused from `path` while they verify, else made anew."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    found: dict[str, str] = {}
    for name, scopes in DEV_KEYS.items():
        key = saved.get(name) if isinstance(saved, dict) else None
        row = keys.verify(key) if isinstance(key, str) else None
        if row is None or sorted(row.scopes) != sorted(scopes):
            key = keys.create(name, scopes).secret
        assert isinstance(key, str)
        found[name] = key
    if found != saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(found, out, indent=2)
    return DevKeys(admin=found["dev-admin"], partners=found["dev-sandbox-partners"])
