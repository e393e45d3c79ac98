"""Per-patient scenarios: how the simulated partners behave for one pseudonymous patient."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

Service = Literal["payer", "pharmacy", "consent", "copay", "sms", "email", "voice"]
# Every partner service the sandbox serves, in this order (`/_sandbox/health` lists them).
SERVICES: tuple[str, ...] = ("payer", "pharmacy", "consent", "copay", "sms", "email", "voice")

PaScenario = Literal[
    "approve",
    "deny",
    "pend_approve",
    "pend_deny",
    "deny_appeal_approve",
    "deny_appeal_deny",
    "pend_info_approve",
    "pend_info_deny",
]
# A LOINC attachment code the payer asks for (PAS CommunicationRequest payload).
LoincCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$")]
SmsStatus = Literal[
    "accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read"
]
VoiceOutcome = Literal["answered", "voicemail", "no_answer", "busy", "failed"]
# An NCPDP Telecom reject code (511-FB): 75 PA required, 70 not covered, 79 refill too
# soon; any other code (e.g. 76 plan limits exceeded, MR not on formulary) is sent as is.
RejectCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,3}$")]
EmailEvent = Literal[
    "processed",
    "deferred",
    "delivered",
    "bounce",
    "blocked",
    "dropped",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
]


# Our drug-group extension's codes (the target active ingredient of a dispense).
DrugGroup = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Ndc = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$")]
# The refill program's scripted history (one pattern; `refill_fills` is the explicit one).
RefillHistory = Literal["on_time", "late", "early", "skipped", "switched", "stopped", "none"]
DispenseStatus = Literal["completed", "entered-in-error", "cancelled", "declined"]


class RefillFill(BaseModel):
    """One scripted dispense of the refill program (a `pharmacy.dispensed` callback)."""

    model_config = ConfigDict(extra="forbid")

    day: int = Field(ge=0, description="Days after the enrollment's starts_on.")
    days_supply: int | None = Field(None, ge=1, le=365, description="Default: the program's.")
    status: DispenseStatus = "completed"
    drug_groups: list[DrugGroup] | None = Field(None, min_length=1, max_length=5)
    ndc: Ndc | None = None
    corrects: int | None = Field(
        None,
        ge=0,
        description="Index of an earlier fill in the list: re-send that dispense (same id, "
        "as it was) with this status, e.g. entered-in-error (the FHIR way of cancelling).",
    )


def _sms_default() -> list[SmsStatus]:
    return ["queued", "sent", "delivered"]


def _email_default() -> list[EmailEvent]:
    return ["processed", "delivered"]


class Outage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: Service
    seconds: float = Field(5.0, ge=0)
    status: int = Field(503, ge=400, le=599)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # payer
    coverage_active: bool = True
    pa_required: bool = True
    out_of_pocket: float | None = 25.0
    # The coverage's plan type in the eligibility answer (a contained Coverage typed by
    # the Source of Payment Typology); None: the answer does not say.
    plan_type: Literal["commercial", "medicare", "medicaid", "other"] | None = None
    pa: PaScenario = "approve"
    pend_seconds: float = Field(2.0, ge=0)
    appeal_pend_seconds: float = Field(2.0, ge=0)
    # pend_info_*: what the info request asks for (11506-3 progress note, 11502-2 lab report)
    pa_info_codes: list[LoincCode] = Field(
        default_factory=lambda: ["11506-3", "11502-2"], min_length=1, max_length=10
    )
    # An approval's preAuthPeriod: the decision day through that day + pa_valid_days.
    pa_valid_days: int = Field(180, ge=1, le=730)
    # consent
    consent: Literal["sign", "decline", "never"] = "sign"
    consent_after_seconds: float = Field(0.5, ge=0)
    # copay card: a non-commercial plan_type is always rejected government_insurance
    copay: Literal["approve", "cap_reached", "not_enrolled"] = "approve"
    copay_annual_cap: float = Field(15000.0, gt=0)
    # pharmacy: filled at fill_after, shipped ship_after later, delivered deliver_after later
    fill_after_seconds: float = Field(0.0, ge=0)
    ship_after_seconds: float = Field(1.0, ge=0)
    deliver_after_seconds: float = Field(1.0, ge=0)
    days_supply: int = Field(
        28, ge=1, le=365, description="Days supply dispensed when set; else the referral's."
    )
    # The drug groups the dispense counts under for adherence (our drug-group extension on
    # the MedicationDispense; a combination product names each). Empty: none sent.
    drug_groups: list[DrugGroup] = Field(default_factory=list, max_length=5)
    # pharmacy claim adjudication at fill time: the n-th referral's claim is rejected with
    # claim_rejects[n] (no fill, no shipment: a pharmacy.claim_rejected callback); once the
    # list is used up every claim pays. A PUT starts the count again.
    claim_rejects: list[RejectCode] = Field(default_factory=list, max_length=20)
    refill_too_soon_days: int = Field(
        5, ge=1, le=365, description="A 79's earliest_fill_date: adjudication date + this."
    )
    # pharmacy refill program (POST /pharmacy/refill-enrollments): the patient's refill
    # history, scripted as pharmacy.dispensed callbacks at day offsets from starts_on.
    refill_history: RefillHistory = "on_time"
    refill_fills: list[RefillFill] | None = Field(
        None, max_length=500, description="An explicit history; wins over refill_history."
    )
    refill_cycles: int = Field(12, ge=1, le=500, description="Fills of a pattern.")
    refill_late_days: int = Field(10, ge=1, le=365, description="late: days past run-out.")
    switch_to_group: DrugGroup = "switched-drug"
    switch_to_ndc: Ndc = "99999-0002-01"
    refill_day_seconds: float = Field(
        1.0, ge=0, description="Real seconds per scripted day (0: all at once, in order)."
    )
    # timing: "real" plays every delay above in real seconds; "stepped" plays them on the
    # patient's own clock, moved only by a driver (POST /_sandbox/clock/{patient_ref}), so
    # a journey on a time-skipped workflow clock and its partners keep one time.
    clock: Literal["real", "stepped"] = "real"
    # messaging. Like the real gateways, SMS and email do not deduplicate on
    # Idempotency-Key unless the switch is on (then: today's stored-response replay).
    sms_idempotency: bool = False
    email_idempotency: bool = False
    sms_statuses: list[SmsStatus] = Field(default_factory=lambda: _sms_default())
    sms_status_interval_seconds: float = Field(0.1, ge=0)
    sms_error_code: int | None = Field(
        None,
        ge=1,
        description="ErrorCode of an undelivered / failed status; default 30003 / 30008.",
    )
    # Accept and record at once, answer only after this hold (a client killed in the
    # window sent a message it never heard about).
    sms_response_delay_seconds: float = Field(0.0, ge=0)
    email_events: list[EmailEvent] = Field(default_factory=lambda: _email_default())
    email_events_after_seconds: float = Field(0.1, ge=0)
    email_response_delay_seconds: float = Field(0.0, ge=0)
    # voice calls (Twilio Calls)
    voice: VoiceOutcome = "answered"
    voice_status_interval_seconds: float = Field(0.1, ge=0)
    # failure modes
    outage: Outage | None = None
    slow_ms: int = Field(0, ge=0)
    duplicate_callbacks: bool = False
    out_of_order: bool = False

    @model_validator(mode="after")
    def _corrections_name_earlier_fills(self) -> Scenario:
        fills = self.refill_fills or []
        for n, fill in enumerate(fills):
            if n and fill.day < fills[n - 1].day:
                raise ValueError(f"refill_fills[{n}].day: the list goes in order of day")
            if fill.corrects is not None and fill.corrects >= n:
                raise ValueError(f"refill_fills[{n}].corrects: must name an earlier fill")
        return self

    def pa_course(self, appeal: bool) -> tuple[str, float, str | None, list[str]]:
        """A new PA's (or an appeal's) course: (X12 306 code answered now, seconds until
        the notification, the decision notified then or None, what an info request asks
        for first). Pended PAs are decided later; pend_info_* ask for information first
        and are decided after the update; an appeal is denied only for deny_appeal_deny."""
        if appeal:
            return (
                "A4",
                self.appeal_pend_seconds,
                "A3" if self.pa == "deny_appeal_deny" else "A1",
                [],
            )
        if not self.pa_required or self.pa == "approve":
            return "A1", 0.0, None, []
        if self.pa in ("deny", "deny_appeal_approve", "deny_appeal_deny"):
            return "A3", 0.0, None, []
        if self.pa in ("pend_info_approve", "pend_info_deny"):
            final = "A1" if self.pa == "pend_info_approve" else "A3"
            return "A4", self.pend_seconds, final, list(self.pa_info_codes)
        return "A4", self.pend_seconds, "A1" if self.pa == "pend_approve" else "A3", []

    def refill_script(self, days_supply: int) -> list[RefillFill]:
        """The refill history for a program of `days_supply` days per fill, in order:
        `refill_fills` when given, else the `refill_history` pattern."""
        if self.refill_fills is not None:
            return list(self.refill_fills)
        history = self.refill_history
        if history == "none":
            return []
        every = {
            "late": days_supply + self.refill_late_days,
            "early": max(days_supply - 3, 1),
        }.get(history, days_supply)
        count = min(3, self.refill_cycles) if history == "stopped" else self.refill_cycles
        fills = []
        for n in range(count):
            if history == "skipped" and n == 3:  # the 4th fill never happens: a 2D gap
                continue
            if history == "switched" and n >= 4:  # from the 5th fill on, another drug
                fills.append(
                    RefillFill(
                        day=n * every, drug_groups=[self.switch_to_group], ndc=self.switch_to_ndc
                    )
                )
            else:
                fills.append(RefillFill(day=n * every))
        return fills

    # Claims adjudicated so far under this scenario (each referral one; a replayed
    # Idempotency-Key none). Not part of the scenario's JSON.
    _claims: int = PrivateAttr(0)

    def adjudicate_claim(self) -> str | None:
        """The reject code of the next claim, or None: it pays."""
        n, self._claims = self._claims, self._claims + 1
        return self.claim_rejects[n] if n < len(self.claim_rejects) else None
