"""Partner actions: one typed activity per registry entry (domain/partner_actions.py).

Each activity is named like its action, validates the journey's call into the action's
request model (a bad request is non-retryable: the journey holds for an operator),
calls the partner's adapter (`adapters/<partner>.py`, its `Client`, the entry's
`method`), records the call on the patient's timeline and the partner's references.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import partner_errors
from domain.actions import PartnerCall
from domain.partner_actions import (
    ACTIONS,
    REQUEST_INVALID,
    PartnerAction,
    RequestInvalid,
    build_request,
    correlation_fields,
)
from domain.partners import BenefitsResult
from store.correlations import CorrelationRepository
from store.timeline import TimelineEvent, TimelineRepository

CORRELATION_IDS = correlation_fields()


def typed_request(call: PartnerCall) -> BaseModel:
    """The action's request from the call; a bad one is non-retryable (held for a person)."""
    try:
        return build_request(call)
    except RequestInvalid as err:
        raise ApplicationError(str(err), type=REQUEST_INVALID, non_retryable=True) from None


class PartnerActivities:
    def __init__(
        self,
        clients: dict[str, Any],
        timeline: TimelineRepository,
        correlations: CorrelationRepository,
        plan_type_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.clients = clients  # partner → adapter client
        self.timeline = timeline
        self.correlations = correlations
        # The plan type on the patient's primary coverage (the intake's insurance card):
        # a FHIR eligibility answer does not carry it, and affordability routes on it.
        self.plan_type_of = plan_type_of

    def activities(self) -> list[Callable[..., Any]]:
        return [self._activity(spec) for spec in ACTIONS.values()]

    def _activity(self, spec: PartnerAction) -> Callable[..., Any]:
        perform = getattr(self.clients[spec.partner], spec.method)

        @activity.defn(name=spec.name)
        @partner_errors
        async def run(call: PartnerCall) -> dict[str, Any]:
            result = spec.result.model_validate(await perform(typed_request(call)))
            if (
                isinstance(result, BenefitsResult)
                and result.plan_type is None
                and (self.plan_type_of is not None)
            ):
                plan_type = await asyncio.to_thread(self.plan_type_of, call.patient_ref)
                result = result.model_copy(update={"plan_type": plan_type})
            return await self._done(call, result)

        run.__name__ = spec.name.replace(".", "_")
        return run

    async def _done(self, call: PartnerCall, result: BaseModel) -> dict[str, Any]:
        """Put the call on the patient's timeline (once per key) and answer the journey."""
        answer = result.model_dump(mode="json")
        ids = {k: str(v) for k, v in answer.items() if k in CORRELATION_IDS}
        outcome = answer.get("outcome") or ("pa required" if answer.get("pa_required") else "ok")
        note = TimelineEvent(
            idempotency_key=f"{call.idempotency_key}:partner.call",
            patient_ref=call.patient_ref,
            journey_ref=call.journey_ref,
            type="partner.call",
            summary=f"{call.action}: {outcome}",
            correlation={"step": call.step_id, **ids},
        )

        def write() -> None:
            self.timeline.record(note)
            for kind, value in ids.items():
                self.correlations.remember(kind, value, call.journey_ref)

        await asyncio.to_thread(write)
        return answer
