"""The partners as the sandbox answers them, for one sampled patient, on the virtual clock.

It reads the sandbox's own per-patient `Scenario`
(`PatientScenario.sandbox`, a sandbox second being a journey second here) and replays what
`sandbox/app.py` does with it, in the shape the adapters (`adapters/`) hand the journey:

- consent.request → ``consent.signed`` / ``consent.declined`` `consent_after_seconds`
  later (``never``: nothing comes); correlation the request id, data request id and
  documents.
- payer.verify_benefits → coverage active, PA required, out of pocket, plan type (the
  SOPT code the sandbox writes, read back as the adapter does).
- payer.submit_prior_auth / payer.submit_appeal: the sandbox's `Claim/$submit` —
  A1 at once when no PA is needed or ``approve``; A3 for the ``deny*`` courses; A4 for
  the pends, then ``pa.decided`` `pend_seconds` later, or (``pend_info_*``) first a
  ``pa.info_requested`` asking for `pa_info_codes`, and the decision `pend_seconds` after
  the first Claim Update. An appeal pends `appeal_pend_seconds` and is decided A3 for
  ``deny_appeal_deny`` only, A1 otherwise (whatever the first course was: a pend_deny's
  appeal is approved, as in the sandbox). The sandbox builds a notification when it
  schedules it: its timestamp (the event's `occurred_at`) and an approval's validity
  (``expires_on`` = that day, UTC, + `pa_valid_days`) are of the submission, not of the
  delivery; so here too.
- pharmacy.refer: the n-th referral of the patient (bridge ones too: they are referrals
  to the sandbox) is adjudicated with ``claim_rejects[n]``, through the Scenario's own
  counter: a reject is one ``pharmacy.claim_rejected`` at the fill time (a 79 with its
  earliest fill date: adjudication day + `refill_too_soon_days`), else ``claim_paid`` and
  ``filled`` at the fill, ``shipped`` `ship_after` later, ``delivered`` (the completed
  MedicationDispense, as the adapter reads it) `deliver_after` after that.
- copay.enroll: a non-commercial plan is rejected ``government_insurance``; a commercial
  one approved with the sandbox's card (or rejected per the Scenario's `copay`).
- Outages are not modelled: the sandbox's outage (0.5 s from the first call) is shorter
  than the activity's first retry interval (1 s), so the retry absorbs it and the journey
  sees the answer a second later, which is nothing on this clock.
- pharmacy.enroll_refills: the refill program; each sampled refill day's dispense is a
  ``pharmacy.dispensed`` (completed) `day` days after the enrollment, handed over at
  15:00 UTC on the enrollment's `starts_on` + `day`.

Every template's script (simulate/hub_script.py, simulate/refill_script.py) answers its
partner actions from here, so the simulator's partners are one model of the sandbox.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from adapters.pharmacy import reject_of
from domain.actions import PartnerCall
from domain.partner_actions import PA_INFO_REQUESTED, build_request
from domain.partners import ConsentRequest, PartnerEvent
from sandbox.app import (
    COPAY_BIN,
    COPAY_GROUP,
    COPAY_PCN,
    COPAY_REJECTIONS,
    HANDOVER_TIME,
    NDC_SYSTEM,
    PLAN_TYPES,
)
from simulate.runtime import Answer, VirtualRuntime
from simulate.script import World
from workflows.runtime import ActionFailed

# One sandbox second is one journey second: the Scenario's numbers are journey time.
SECONDS_PER_DAY = 86400.0
REVIEW_OUTCOMES = {"A1": "approved", "A3": "denied", "A4": "pended"}


class SandboxPartners:
    """One patient's partners; ids have the sandbox's shapes, numbered."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.patient = world.patient
        self.sc = world.patient.sandbox(SECONDS_PER_DAY)
        self._serial = itertools.count(1)
        self.pas: dict[str, dict[str, Any]] = {}  # the sandbox's PA records, by number

    # -- ids ----------------------------------------------------------------------
    def _n(self) -> int:
        return next(self._serial)

    def _hex(self, width: int) -> str:
        half = width // 2
        return f"{self.patient.index:0{half}x}{self._n():0{width - half}x}"

    def event_id(self) -> str:
        return "evt_" + self._hex(32)

    # -- consent ------------------------------------------------------------------
    def consent(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        request = build_request(call)
        assert isinstance(request, ConsentRequest)
        documents = list(request.documents)
        request_id = "cr_" + self._hex(12)
        if self.sc.consent != "never":
            kind = "consent.signed" if self.sc.consent == "sign" else "consent.declined"
            at = rt.now() + timedelta(seconds=self.sc.consent_after_seconds)
            rt.deliver(
                PartnerEvent(
                    event_id=self.event_id(), type=kind, correlation_key=request_id,
                    journey_ref=call.journey_ref, occurred_at=at,
                    data={"request_id": request_id, "documents": documents},
                ),
                at,
            )  # fmt: skip
        return {"request_id": request_id}

    # -- payer ----------------------------------------------------------------------
    def benefits(self) -> dict[str, Any]:
        sc = self.sc
        return {"coverage_active": sc.coverage_active, "pa_required": sc.pa_required,
                "out_of_pocket": sc.out_of_pocket, "plan_type": sc.plan_type}  # fmt: skip

    def _expires(self, code: str, built: datetime) -> str | None:
        if code != "A1":
            return None
        return (built.date() + timedelta(days=self.sc.pa_valid_days)).isoformat()

    def _notify(
        self,
        rt: VirtualRuntime,
        call: PartnerCall,
        pa_number: str,
        code: str,
        delay: float,
        appeal: bool,
        info: list[str] | None = None,
    ) -> None:
        """The sandbox's `pa_notify`: built now, delivered `delay` seconds on."""
        built, at = rt.now(), rt.now() + timedelta(seconds=delay)
        data: dict[str, Any] = {
            "outcome": "info_requested" if info else REVIEW_OUTCOMES[code],
            "review_action_code": code, "pa_number": pa_number, "appeal": appeal,
        }  # fmt: skip
        if info:
            data["requested"] = list(info)
        else:
            data["expires_on"] = self._expires(code, built)
            record = self.pas[pa_number]
            rt.later(at, lambda: record.update(code=code))  # decided from then on
        rt.deliver(
            PartnerEvent(
                event_id=self.event_id(), type=PA_INFO_REQUESTED if info else "pa.decided",
                correlation_key=pa_number, journey_ref=call.journey_ref, occurred_at=built,
                data=data,
            ),
            at,
        )  # fmt: skip

    def _answer(self, pa_number: str, code: str, rt: VirtualRuntime) -> dict[str, Any]:
        expires = self._expires(code, rt.now())
        return {"pa_number": pa_number, "outcome": REVIEW_OUTCOMES[code],
                "review_action_code": code, "expires_on": expires}  # fmt: skip

    def prior_auth(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        """The sandbox's `Claim/$submit`: a new PA, an update of a pended one, an appeal."""
        sc, appeal_of, update_of = (
            self.sc,
            call.fields.get("appeal_of"),
            call.fields.get("update_of"),
        )
        if appeal_of and appeal_of not in self.pas:
            raise ActionFailed("payer.invalid_request", "appealed PA number is unknown")
        if update_of:
            return self._update(call, rt, update_of)
        code, delay, final, info = sc.pa_course(appeal=bool(appeal_of))
        pa_number = "PA" + self._hex(10).upper()
        self.pas[pa_number] = {"code": code, "final": final, "awaiting_info": bool(info)}
        if final is not None:
            if info:
                self._notify(rt, call, pa_number, "A4", delay, bool(appeal_of), info)
            else:
                self._notify(rt, call, pa_number, final, delay, bool(appeal_of))
        return self._answer(pa_number, code, rt)

    def _update(self, call: PartnerCall, rt: VirtualRuntime, pa_number: str) -> dict[str, Any]:
        """PAS Claim Update: pended again; the first after an info request gets the
        decision `pend_seconds` later. The sandbox's 400s, as the adapter raises them."""
        record = self.pas.get(pa_number)
        if record is None:
            raise ActionFailed("payer.invalid_request", "updated PA number is unknown")
        if record["code"] != "A4":
            raise ActionFailed("payer.invalid_request", "only a pended PA can be updated")
        decide, record["awaiting_info"] = record["awaiting_info"], False
        if decide and record["final"] is not None:
            self._notify(rt, call, pa_number, record["final"], self.sc.pend_seconds, False)
        return self._answer(pa_number, "A4", rt)

    # -- pharmacy -------------------------------------------------------------------
    def _days_supply(self, call: PartnerCall) -> int:
        """The scenario's days supply when set explicitly, else the request's (as the
        sandbox's pharmacy has it)."""
        if "days_supply" in self.sc.model_fields_set:
            return self.sc.days_supply
        return int(call.fields["days_supply"])

    def refer(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        sc, rx_id = self.sc, "rx_" + self._hex(12)
        ndc = str(call.fields["drug_code"])
        supply = self._days_supply(call)
        reject = sc.adjudicate_claim()  # the n-th referral's claim: claim_rejects[n]
        t_fill = rt.now() + timedelta(seconds=sc.fill_after_seconds)
        t_ship = t_fill + timedelta(seconds=sc.ship_after_seconds)
        t_deliver = t_ship + timedelta(seconds=sc.deliver_after_seconds)

        def event(kind: str, at: datetime, **data: Any) -> None:
            rt.deliver(
                PartnerEvent(
                    event_id=self.event_id(), type=kind, correlation_key=rx_id,
                    journey_ref=call.journey_ref, occurred_at=at, data={"rx_id": rx_id, **data},
                ),
                at,
            )  # fmt: skip

        if reject is not None:
            earliest = None
            if reject == "79":
                earliest = (t_fill.date() + timedelta(days=sc.refill_too_soon_days)).isoformat()
            event("pharmacy.claim_rejected", t_fill, transaction_response_status="R",
                  reject_codes=[reject], reject=reject_of([reject]),
                  earliest_fill_date=earliest)  # fmt: skip
            return {"rx_id": rx_id}
        code = f"{NDC_SYSTEM}|{ndc}"
        groups = sorted(set(sc.drug_groups)) or [code]
        event("pharmacy.claim_paid", t_fill, transaction_response_status="P",
              authorization_number="AUTH" + self._hex(10).upper())  # fmt: skip
        event("pharmacy.filled", t_fill)
        event("pharmacy.shipped", t_ship, carrier="SANDBOX-EXPRESS",
              tracking_number="TRK" + self._hex(10).upper(), cold_chain=True)  # fmt: skip
        event("pharmacy.delivered", t_deliver, dispense_id="md-" + rx_id.replace("_", "-"),
              dispense_status="completed", is_fill=True, days_supply=supply,
              dispensed_at=t_deliver.isoformat(), quantity=None, quantity_unit=None,
              medication_code=code, drug_groups=groups)  # fmt: skip
        return {"rx_id": rx_id}

    # -- copay card -----------------------------------------------------------------
    def copay(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        plan_type = call.fields.get("plan_type")
        if plan_type not in PLAN_TYPES or not call.fields.get("copay_program"):
            raise ActionFailed("copay.invalid_request", "copay enrollment request invalid")
        enrollment_id = "ce_" + self._hex(12)
        reason = (
            "government_insurance" if plan_type != "commercial"
            else COPAY_REJECTIONS.get(self.sc.copay)
        )  # fmt: skip
        if reason is not None:
            return {"enrollment_id": enrollment_id, "outcome": "rejected", "rejection": reason}
        card = {"bin": COPAY_BIN, "pcn": COPAY_PCN, "group": COPAY_GROUP,
                "member_id": "CM" + self._hex(10).upper(),
                "annual_benefit_cap": self.sc.copay_annual_cap}  # fmt: skip
        return {"enrollment_id": enrollment_id, "outcome": "approved", "card": card}

    # -- pharmacy: the refill program ------------------------------------------------
    def enroll_refills(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        """Enrolled at once; the sandbox's refill script for this patient (the Scenario's
        `refill_script`: the sampled refill days), each dispense `day` scripted days on,
        handed over at HANDOVER_TIME (UTC) on `starts_on` + the day. Only completed
        fills are scripted from a sampled patient."""
        sc, rx_id = self.sc, "rx_" + self._hex(12)
        starts_on = date.fromisoformat(str(call.fields["starts_on"]))
        supply = self._days_supply(call)
        code = f"{NDC_SYSTEM}|{call.fields['drug_code']}"
        groups = sorted(set(sc.drug_groups)) or [code]  # as the adapter reads them
        for n, fill in enumerate(sc.refill_script(supply), start=1):
            at = rt.now() + timedelta(seconds=fill.day * sc.refill_day_seconds)
            if at >= self.world.horizon:
                break
            handed = datetime.combine(starts_on + timedelta(days=fill.day), HANDOVER_TIME, UTC)
            rt.deliver(
                PartnerEvent(
                    event_id=self.event_id(), type="pharmacy.dispensed", correlation_key=rx_id,
                    journey_ref=call.journey_ref, occurred_at=handed,
                    data={"rx_id": rx_id, "dispense_id": f"md-{rx_id.replace('_', '-')}-{n}",
                          "dispense_status": fill.status, "is_fill": True,
                          "days_supply": fill.days_supply or supply,
                          "dispensed_at": handed.isoformat(),
                          "medication_code": code, "drug_groups": groups},
                ),
                at,
            )  # fmt: skip
        return {"rx_id": rx_id}

    def answers(self) -> dict[str, Answer]:
        """Every partner action the sandbox serves, answered as it would."""
        return {
            "consent.request": self.consent,
            "payer.verify_benefits": self.benefits(),
            "payer.submit_prior_auth": self.prior_auth,
            "payer.submit_appeal": self.prior_auth,  # the same Claim/$submit
            "pharmacy.refer": self.refer,
            "pharmacy.enroll_refills": self.enroll_refills,
            "copay.enroll": self.copay,
        }
