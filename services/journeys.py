"""Opening a case: the caller's patient id becomes our pseudonym, the intake (if any) is
registered, and the journey starts with one StartWorkflowExecution."""

from __future__ import annotations

from collections.abc import Mapping

from contract.journeys import RESOLVED_AT_START, StartJourney
from domain.journey import JourneyStart, StartAck
from domain.programs import Program, default_programs
from domain.template import JourneyTemplate
from gateway.journeys import JourneyGateway
from services.errors import InvalidField, JourneyRunsAnotherTemplate
from services.patients import PatientService


def journey_start(
    request: StartJourney, template: JourneyTemplate, patient_ref: str
) -> JourneyStart:
    """The workflow input for a start request: every field the API does not resolve
    itself passes through by name, so a new optional field needs no code here."""
    fields = request.model_dump(exclude=set(RESOLVED_AT_START))
    return JourneyStart.model_validate({**fields, "template": template, "patient_ref": patient_ref})


class JourneyStarter:
    def __init__(
        self,
        journeys: JourneyGateway,
        patients: PatientService,
        programs: Mapping[str, Program] | None = None,
    ) -> None:
        self.journeys = journeys
        self.patients = patients
        # Loaded once, at startup: a bad program file stops the process, not a start.
        self.programs = default_programs() if programs is None else programs

    async def start(
        self, request: StartJourney, template: JourneyTemplate, actor: str = ""
    ) -> StartAck:
        unknown = sorted(set(request.params) - set(template.parameters))
        if unknown:  # names of the template's parameters, not values
            raise InvalidField(
                f"body.params.{unknown[0]}", "not a parameter of this template",
                "unknown_parameter",
            )  # fmt: skip
        if request.patient is not None:
            try:
                patient_ref, _ = await self.patients.register(
                    request.patient_id, request.patient, actor
                )
            except InvalidField as bad:
                where = f"body.patient.{bad.field.removeprefix('body.')}"
                raise InvalidField(where, bad.message, bad.kind) from None
        else:
            patient_ref = await self.patients.pseudonym(request.patient_id)
        program = self.programs.get(request.program)
        if program is not None:  # its calendar travels in the journey's template snapshot
            template = program.applied_to(template)
        ack = await self.journeys.start(journey_start(request, template, patient_ref))
        if ack.template_id != template.id:
            raise JourneyRunsAnotherTemplate(ack.journey_id, ack.template_id)
        return ack
