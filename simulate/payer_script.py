"""The payer and the copay program, as the sandbox answers them for one sampled patient.

Benefits verification answers the patient's coverage. A prior authorization follows the
patient's PA scenario the way the sandbox's PAS endpoint does (sandbox/app.py
`pas_submit`, `pas_update`, `pa_notify`): approved or denied at once, or pended with the
decision (`pa.decided`) after the sampled turnaround; `pend_info_*` first asks for more
information (`pa.info_requested`) and decides only after the update; an appeal is
pended and decided after the sampled appeal time. An approval is valid from the day it
was answered (UTC) for `pa_valid_days`. The copay program never enrolls a government
plan. Events carry what the adapters make of the sandbox's callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from domain.actions import PartnerCall
from domain.partners import PartnerEvent
from simulate.cohort_scenario import PatientScenario
from simulate.runtime import VirtualRuntime

PA_VALID_DAYS = 180  # the sandbox scenario's default
INFO_CODES = ["11506-3", "11502-2"]  # the sandbox's default pa_info_codes
OUT_OF_POCKET = 25.0  # the sandbox scenario's default
COPAY_CAP = 15000.0  # the sandbox scenario's copay_annual_cap default
OUTCOME = {"A1": "approved", "A3": "denied", "A4": "pended"}


def benefits(patient: PatientScenario) -> dict[str, Any]:
    return {
        "coverage_active": True,
        "pa_required": patient.pa_required,
        "out_of_pocket": OUT_OF_POCKET,
        "plan_type": patient.plan_type,
    }


def copay(patient: PatientScenario) -> dict[str, Any]:
    enrollment = f"ce-sim{patient.index}"
    if patient.plan_type != "commercial":  # anti-kickback: never a government plan
        return {"enrollment_id": enrollment, "outcome": "rejected",
                "rejection": "government_insurance"}  # fmt: skip
    card = {"bin": "610020", "pcn": "SBXCOPAY", "group": "CPYSBX01",
            "member_id": f"CM-SIM{patient.index}", "annual_benefit_cap": COPAY_CAP}  # fmt: skip
    return {"enrollment_id": enrollment, "outcome": "approved", "card": card}


@dataclass
class _Pa:
    code: str
    final: str | None
    awaiting_info: bool
    expires_on: str | None  # an approval's last day, fixed when the answer was built


@dataclass
class Payer:
    """One patient's payer: remembers the PAs it has numbered."""

    patient: PatientScenario
    valid_days: int = PA_VALID_DAYS
    pas: dict[str, _Pa] = field(default_factory=dict)

    def prior_auth(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        fields = call.fields
        if fields.get("update_of"):
            return self._update(str(fields["update_of"]), rt)
        p = self.patient
        appeal_of = fields.get("appeal_of")
        final: str | None = None
        info = False
        delay = 0.0
        if appeal_of:
            code, delay = "A4", p.appeal_days
            final = "A3" if p.pa == "deny_appeal_deny" else "A1"
        elif not p.pa_required or p.pa == "approve":
            code = "A1"
        elif p.pa in ("deny", "deny_appeal_approve", "deny_appeal_deny"):
            code = "A3"
        elif p.pa in ("pend_info_approve", "pend_info_deny"):
            code, delay, info = "A4", p.pa_turnaround_days, True
            final = "A1" if p.pa == "pend_info_approve" else "A3"
        else:
            code, delay = "A4", p.pa_turnaround_days
            final = "A1" if p.pa == "pend_approve" else "A3"
        number = f"PA-SIM{p.index}-{len(self.pas) + 1}"
        # The sandbox builds every response (and a later notification's) when it answers.
        expires = (rt.now().date() + timedelta(days=self.valid_days)).isoformat()
        self.pas[number] = _Pa(code, final, info, expires)
        if final is not None:
            self._notify(rt, number, "A4" if info else final, delay, bool(appeal_of), info)
        return {"pa_number": number, "outcome": OUTCOME[code], "review_action_code": code,
                "expires_on": expires if code == "A1" else None}  # fmt: skip

    def appeal(self, call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        return self.prior_auth(call, rt)

    def _update(self, number: str, rt: VirtualRuntime) -> dict[str, Any]:
        pa = self.pas[number]
        if pa.awaiting_info and pa.final is not None:
            pa.awaiting_info = False
            pa.expires_on = (rt.now().date() + timedelta(days=self.valid_days)).isoformat()
            self._notify(rt, number, pa.final, self.patient.pa_turnaround_days, False, False)
        return {"pa_number": number, "outcome": "pended", "review_action_code": "A4",
                "expires_on": None}  # fmt: skip

    def _notify(
        self, rt: VirtualRuntime, number: str, code: str, days: float, appeal: bool, info: bool
    ) -> None:
        pa = self.pas[number]
        data: dict[str, Any] = {
            "outcome": "info_requested" if info else OUTCOME[code],
            "review_action_code": code,
            "pa_number": number,
            "appeal": appeal,
        }
        if info:
            data["requested"] = list(INFO_CODES)
        else:
            data["expires_on"] = pa.expires_on if code == "A1" else None
        at = rt.now() + timedelta(days=days)

        def decided() -> None:
            if not info:
                pa.code = code

        rt.later(at, decided)
        rt.deliver(
            PartnerEvent(
                event_id=f"pas-{number}-{code}-{len(rt.calls)}",
                type="pa.info_requested" if info else "pa.decided",
                correlation_key=number, occurred_at=at, data=data,
            ),
            at,
        )  # fmt: skip


def payer_answers(patient: PatientScenario) -> dict[str, Callable[..., dict[str, Any]] | Any]:
    payer = Payer(patient)
    return {
        "payer.verify_benefits": benefits(patient),
        "payer.submit_prior_auth": payer.prior_auth,
        "payer.submit_appeal": payer.appeal,
        "copay.enroll": copay(patient),
    }
