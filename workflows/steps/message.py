"""message: one contact, decided by the contact policy when it goes.

The policy (run by the `messaging.contact` activity against the store) answers send,
defer or suppress. A deferred message waits on a durable timer and is decided again
when due, or sooner when the patient opts out or back in (`contact.changed`): never
dropped, never sent late into quiet hours. A sent message with channels left waits for
its receipt up to `receipt_window`; undelivered, failed or silent, it falls back to the
next channel, and the fallback is on the ledger and the timeline.

Journeys recorded before the policy (no `contact-policy-v1` marker) replay the first
generation: one channel, one `messaging.send`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.actions import ContactOutcome, ContactRequest, OutboundMessage
from domain.events import CONTACT_CHANGED, MESSAGE_RECEIPT
from domain.steps.message import MessageStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter

CONTACT_POLICY_PATCH = "contact-policy-v1"
# Channels whose gateway reports delivery (a human task has no receipt).
RECEIPTED = frozenset({"sms", "email", "voice"})
NEEDS_A_PERSON = frozenset({"no_consent", "no_contact", "no_channel_left"})


@handles("message")
async def message(j: JourneyInterpreter, step: MessageStep, resume: list[Frame] | None) -> Outcome:
    values = {
        "program_name": j.template.program_name,
        "help_contact": j.template.help_contact,
        **{k: str(j.eval(v)) for k, v in step.values.items()},
    }
    if not j.rt.patched(CONTACT_POLICY_PATCH):
        return await _first_generation(j, step, values)
    request = ContactRequest(
        journey_ref=j.state.journey_id,
        patient_ref=j.start.patient_ref,
        program=j.start.program,
        step_id=step.id,
        idempotency_key=j.idempotency_key(step),
        content=step.content,
        text=step.text.format(**values) if step.text else None,
        subject=step.subject,
        purpose=step.purpose,
        message_class=step.message_class,
        channels=step.allowed_channels,
        values=values,
        reason=str(j.eval(step.reason)) if step.reason else _default_reason(j, step, values),
        at=j.rt.now(),
    )
    while True:
        outcome = await j.rt.contact(request)
        if outcome.status == "deferred" and outcome.until is not None:
            changed = await j.wait([CONTACT_CHANGED], j.start.patient_ref, outcome.until, step)
            # Woken by the timer: it is `until` at least (a scaled clock may read a hair
            # early, which would land back in quiet hours and defer a whole day again).
            at = j.rt.now() if changed is not None else max(j.rt.now(), outcome.until)
            request = request.model_copy(update={"at": at})
            continue
        if outcome.status in ("sent", "failed") and _fallback_left(request, outcome):
            settled = outcome.settled or (
                await _receipt(j, step, outcome) if outcome.status == "sent" else "rejected"
            )
            if settled != "delivered":
                j.rt.note(
                    "message.fallback", f"{request.attempt_key}/fallback",
                    f"{outcome.channel} {settled}; next channel", step=step.id,
                )  # fmt: skip
                assert outcome.channel is not None
                request = request.model_copy(
                    update={
                        "attempt": request.attempt + 1,
                        "exclude": [*request.exclude, outcome.channel],
                        "at": j.rt.now(),
                    }
                )
                continue
        return _result(j, step, outcome)


def _default_reason(j: JourneyInterpreter, step: MessageStep, values: dict[str, str]) -> str:
    shown = ",".join(f"{k}={values[k]}" for k in sorted(values))
    return f"{j.state.journey_id}/{step.id}/{shown}"


def _fallback_left(request: ContactRequest, outcome: ContactOutcome) -> bool:
    tried = {*request.exclude, outcome.channel}
    return outcome.channel in RECEIPTED and any(c not in tried for c in request.channels)


async def _receipt(j: JourneyInterpreter, step: MessageStep, outcome: ContactOutcome) -> str:
    """delivered, failed (with the gateway's code) or no_receipt.

    The window is wall-clock time: a gateway's latency does not shrink with a demo
    journey's time scale (journey time runs `time_scale` times faster)."""
    assert outcome.message_id is not None
    deadline = j.rt.now() + j.duration(step.receipt_window) * j.start.time_scale
    event = await j.wait([MESSAGE_RECEIPT], outcome.message_id, deadline, step)
    if event is None:
        return "no_receipt"
    return str(event.data.get("outcome") or "failed")


def _result(j: JourneyInterpreter, step: MessageStep, outcome: ContactOutcome) -> Outcome:
    if outcome.message_id and outcome.channel in RECEIPTED:
        j.state.set_message_status(outcome.message_id, "accepted")
    if outcome.status == "sent":
        j.state.messages_sent += 1
        return step.next, f"sent:{outcome.channel}"
    if outcome.status in ("failed", "unknown") or outcome.reason in NEEDS_A_PERSON:
        # A person must look: no way to reach the patient, the gateway failed us, or
        # nobody can tell whether it went. (An opt-out is the patient's wish: no flag.)
        j.attention(f"{step.id}: message {outcome.status} ({outcome.reason})")
    return step.next, f"{outcome.status}:{outcome.reason}"


async def _first_generation(
    j: JourneyInterpreter, step: MessageStep, values: dict[str, str]
) -> Outcome:
    assert step.text is not None and step.channel is not None
    outcome = await j.rt.send_message(
        OutboundMessage(
            journey_ref=j.state.journey_id,
            patient_ref=j.start.patient_ref,
            program=j.start.program,
            step_id=step.id,
            idempotency_key=j.idempotency_key(step),
            channel=step.channel,
            purpose=step.purpose,
            message_class=step.message_class,
            text=step.text.format(**values),
            subject=step.subject,
        )
    )
    if outcome.message_id and outcome.message_id not in j.state.message_status:
        j.state.set_message_status(outcome.message_id, "accepted")
    if outcome.status == "suppressed":
        j.attention(f"{step.id}: message suppressed ({outcome.reason})")
        return step.next, f"suppressed:{outcome.reason}"
    j.state.messages_sent += 1
    return step.next, "sent"
