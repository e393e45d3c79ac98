"""wait_for_event: wait for a matching event until the timeout; never on an empty key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.steps.wait_for_event import WaitForEventStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter

# Journeys recorded before this waited on the text 'None' (with a timer) instead.
EMPTY_KEY_PATCH = "empty-correlation-hold-v1"


@handles("wait_for_event")
async def wait_for_event(
    j: JourneyInterpreter, step: WaitForEventStep, resume: list[Frame] | None
) -> Outcome:
    value = j.eval(step.correlation)
    while value in (None, "") and j.rt.patched(EMPTY_KEY_PATCH):
        # Waiting on 'None' could never match: hold; the operator's retry may carry the key.
        retry = await j.hold_for_operator(
            step, f"correlation {step.correlation!r} resolved to nothing"
        )
        value = (retry.data.get("correlation_key") if retry else None) or j.eval(step.correlation)
    key = str(value)
    deadline = j.rt.now() + j.duration(step.timeout)
    event = await j.wait(step.event_types(), key, deadline, step)
    if event is None:
        return step.on_timeout, "timeout"
    j.events[step.id] = {
        **event.data,
        "type": event.type,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": j.rt.now().isoformat(),
    }
    return step.next, event.type
