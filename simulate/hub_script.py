"""specialty_start's world (the hub journey, v1 and v2) for one sampled patient: the
partners answer as the sandbox does for the same patient, the hub's people work the
journey's tasks, and the patient confirms the first dose.

Partners. The script reads the sandbox's own per-patient `Scenario`
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

People. Each task the journey opens (seen through `rt.task_changed`) is completed
`task_hours_for(role, k)` hours after it opened, k its order among the patient's tasks
of that role, as the task queue tells the journey (``task.completed``, correlation the
task id), unless that draw is None (never worked) or the task was closed meanwhile. The
onboarding (injection training) task done, the patient's first dose is confirmed
`first_dose_days` later (``patient.first_dose_confirmed``, correlation
``onboarding-<patient ref>``), unless never.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from adapters.pharmacy import reject_of
from domain.actions import PartnerCall, TaskChange
from domain.events import TASK_COMPLETED
from domain.partner_actions import PA_INFO_REQUESTED, build_request
from domain.partners import ConsentRequest, PartnerEvent
from sandbox.app import (
    COPAY_BIN,
    COPAY_GROUP,
    COPAY_PCN,
    COPAY_REJECTIONS,
    NDC_SYSTEM,
    PLAN_TYPES,
)
from simulate.runtime import VirtualRuntime
from simulate.script import Script, World
from workflows.runtime import ActionFailed

# One sandbox second is one journey second: the Scenario's numbers are journey time.
SECONDS_PER_DAY = 86400.0
FIRST_DOSE = "patient.first_dose_confirmed"
ONBOARDING_STEP = "onboarding"
REVIEW_OUTCOMES = {"A1": "approved", "A3": "denied", "A4": "pended"}
CLOSED = frozenset({"completed", "abandoned", "cancelled"})


class HubWorld:
    """One patient's partners and people; ids have the sandbox's shapes, numbered."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.patient = world.patient
        self.sc = world.patient.sandbox(SECONDS_PER_DAY)
        self._serial = itertools.count(1)
        self.pas: dict[str, dict[str, Any]] = {}  # the sandbox's PA records, by number
        self.opened_by_role: Counter[str] = Counter()
        self.closed: set[str] = set()

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
        final: str | None = None
        info: list[str] = []
        delay = 0.0
        if appeal_of:
            code, delay = "A4", sc.appeal_pend_seconds
            final = "A3" if sc.pa == "deny_appeal_deny" else "A1"
        elif not sc.pa_required or sc.pa == "approve":
            code = "A1"
        elif sc.pa in ("deny", "deny_appeal_approve", "deny_appeal_deny"):
            code = "A3"
        elif sc.pa in ("pend_info_approve", "pend_info_deny"):
            code, delay, info = "A4", sc.pend_seconds, list(sc.pa_info_codes)
            final = "A1" if sc.pa == "pend_info_approve" else "A3"
        else:
            code, delay = "A4", sc.pend_seconds
            final = "A1" if sc.pa == "pend_approve" else "A3"
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
    def refer(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        sc, rx_id = self.sc, "rx_" + self._hex(12)
        ndc = str(call.fields["drug_code"])
        supply = (
            sc.days_supply if "days_supply" in sc.model_fields_set else call.fields["days_supply"]
        )
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

    # -- people ---------------------------------------------------------------------
    def task_changed(self, rt: VirtualRuntime, change: TaskChange) -> None:
        """A task opened: its completion is scheduled (if it is ever worked)."""
        if change.change in CLOSED:
            self.closed.add(change.task_id)
            return
        if change.change != "opened":
            return
        k = self.opened_by_role[change.role]
        self.opened_by_role[change.role] += 1
        hours = self.patient.task_hours_for(change.role, k)
        if hours is None:
            return  # nobody ever works it
        done = change.opened_at + timedelta(hours=hours)
        rt.later(done, lambda: self._complete(rt, change, done))

    def _complete(self, rt: VirtualRuntime, change: TaskChange, at: datetime) -> None:
        if change.task_id in self.closed or rt.state.status != "running":
            return  # closed meanwhile (given up, cancelled): nothing to complete
        n = self._n()
        rt.deliver(
            PartnerEvent(
                event_id=f"task-sim{self.patient.index}-{n}-completed", type=TASK_COMPLETED,
                correlation_key=change.task_id, journey_ref=change.journey_ref, occurred_at=at,
                data={"outcome": None, "by": f"sim-{change.role}"},
            )
        )  # fmt: skip
        if change.step_id == ONBOARDING_STEP and self.patient.first_dose_days is not None:
            dose = at + timedelta(days=self.patient.first_dose_days)
            rt.deliver(
                PartnerEvent(
                    event_id=f"first-dose-{change.task_id}-{self.world.patient_ref}",
                    type=FIRST_DOSE, correlation_key=f"onboarding-{self.world.patient_ref}",
                    journey_ref=change.journey_ref, occurred_at=dose, data={},
                ),
                dose,
            )  # fmt: skip

    def observe_tasks(self, rt: VirtualRuntime) -> None:
        """Hook the runtime's task changes (the queue's view), keeping its own effect."""
        record = rt.task_changed

        async def task_changed(change: TaskChange) -> None:
            await record(change)
            self.task_changed(rt, change)

        rt.task_changed = task_changed  # type: ignore[method-assign]


def hub_script(world: World) -> Script:
    hub = HubWorld(world)
    patient = world.patient
    answers: dict[str, Any] = {
        "consent.request": hub.consent,
        "payer.verify_benefits": hub.benefits(),
        "payer.submit_prior_auth": hub.prior_auth,
        "payer.submit_appeal": hub.prior_auth,  # the same Claim/$submit
        "pharmacy.refer": hub.refer,
        "copay.enroll": hub.copay,
    }
    return Script(
        business_key=None,
        params={"days_supply": patient.days_supply},
        context={"timezone": patient.timezone, "plan_type": patient.plan_type},
        answers=answers,
        setup=hub.observe_tasks,
    )
