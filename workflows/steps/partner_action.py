"""partner_action: build the typed request from the registry, call, route failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.actions import PartnerCall
from domain.partner_actions import (
    ACTIONS,
    PARTNER_UNAVAILABLE,
    REQUEST_INVALID,
    RequestInvalid,
    build_request,
)
from domain.steps.partner_action import PartnerActionStep
from workflows.runtime import ActionFailed
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter

# Journeys recorded before requests were checked in the workflow call the activity anyway.
TYPED_REQUESTS_PATCH = "typed-partner-requests-v1"


@handles("partner_action")
async def partner_action(
    j: JourneyInterpreter, step: PartnerActionStep, resume: list[Frame] | None
) -> Outcome:
    while True:
        call = _call(j, step)
        problem = request_problem(call)
        try:
            if problem and j.rt.patched(TYPED_REQUESTS_PATCH):
                raise ActionFailed(REQUEST_INVALID, problem)
            j.outputs[step.id] = await j.rt.partner_action(call)
        except ActionFailed as failure:
            held = failure.error_type in (PARTNER_UNAVAILABLE, REQUEST_INVALID)
            target = None if held else (step.on_error.get(failure.error_type)
                                        or step.on_error.get("*"))  # fmt: skip
            if target:
                j.outputs[step.id] = {"error": failure.error_type}
                return target, f"error:{failure.error_type}"
            # Nobody planned for this: hold the journey for an operator, then try again.
            reason = failure.error_type
            if held and not str(failure).startswith(reason):
                reason = f"{reason}: {failure}"
            elif held:
                reason = str(failure)
            await j.hold_for_operator(step, reason)
            if failure.error_type != PARTNER_UNAVAILABLE:
                # A rejected request is a new request after the fix: a new key. After an
                # outage the first request may have landed: the same key, so no double.
                j.visits[step.id] += 1
            continue
        outcome = j.outputs[step.id].get("outcome", "done")
        return step.next, str(outcome)


def _call(j: JourneyInterpreter, step: PartnerActionStep) -> PartnerCall:
    """Inputs from `inputs` (expressions), else the template parameter of the same name."""
    fields = {}
    for name in ACTIONS[step.action].inputs():
        if name in step.inputs:
            fields[name] = j.eval(step.inputs[name])
        elif name in j.params:
            fields[name] = j.params[name]
    return PartnerCall(
        action=step.action,
        journey_ref=j.state.journey_id,
        patient_ref=j.start.patient_ref,
        program=j.start.program,
        step_id=step.id,
        idempotency_key=j.idempotency_key(step),
        fields=fields,
    )


def request_problem(call: PartnerCall) -> str | None:
    """Why the typed request cannot be built (field names only, never values), or None."""
    try:
        build_request(call)
    except RequestInvalid as err:
        return str(err)
    return None
