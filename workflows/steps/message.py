"""message: render the text, hand it to the messaging side effect (decided at send time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.actions import OutboundMessage
from domain.steps.message import MessageStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("message")
async def message(j: JourneyInterpreter, step: MessageStep, resume: list[Frame] | None) -> Outcome:
    values = {
        "program_name": j.template.program_name,
        "help_contact": j.template.help_contact,
        **{k: j.eval(v) for k, v in step.values.items()},
    }
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
