"""Typed dependencies for routes: the gateway, the services, the store, ids."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from api.catalog import TemplateCatalog
from api.errors import ApiProblem
from contract.ids import JOURNEY_ID, PATIENT_ID
from domain.journey import check_pseudonym
from gateway.journeys import JourneyGateway
from services.consents import ConsentService
from services.journeys import JourneyStarter as Starter
from services.patients import PatientService
from store import Store


def journey_gateway(request: Request) -> JourneyGateway:
    return cast(JourneyGateway, request.app.state.journeys)


def journey_starter(request: Request) -> Starter:
    return cast(Starter, request.app.state.starter)


def patient_service(request: Request) -> PatientService:
    return cast(PatientService, request.app.state.patients)


def consent_service(request: Request) -> ConsentService:
    return cast(ConsentService, request.app.state.consents)


def template_catalog(request: Request) -> TemplateCatalog:
    return cast(TemplateCatalog, request.app.state.templates)


def pitwall_store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


def pseudonymous_journey_id(journey_id: str | None) -> str | None:
    """A journey id whose parts are pseudonymous (None passes: an optional filter)."""
    if journey_id is None:
        return None
    _, program, patient_ref, *key = journey_id.split("/")
    check_pseudonym(program, "program")
    check_pseudonym(patient_ref, "patient_ref")
    for part in key:
        check_pseudonym(part, "business_key")
    return journey_id


Journeys = Annotated[JourneyGateway, Depends(journey_gateway)]
JourneyStarter = Annotated[Starter, Depends(journey_starter)]
Patients = Annotated[PatientService, Depends(patient_service)]
Consents = Annotated[ConsentService, Depends(consent_service)]
Templates = Annotated[TemplateCatalog, Depends(template_catalog)]
PitwallStore = Annotated[Store, Depends(pitwall_store)]
PatientId = Annotated[
    str,
    Path(
        pattern=PATIENT_ID,
        description="Your id for the patient (MRN, hub case id...), as you registered it.",
        examples=["MRN-0012345"],
    ),
]
JourneyId = Annotated[
    str,
    Path(
        pattern=JOURNEY_ID,
        description="journey/{program}/{patient_ref}[/{business_key}], as start returned it.",
        examples=["journey/demo-program/pt-7f3a9c"],
    ),
    AfterValidator(pseudonymous_journey_id),
]


async def known_patient(patient_id: PatientId, patients: Patients) -> str:
    """The pseudonym of a patient the caller registered (or started a journey for)."""
    patient_ref = await patients.resolve(patient_id)
    if patient_ref is None:
        raise ApiProblem(404, "patient-not-found", "No patient with that id")
    return patient_ref


KnownPatient = Annotated[str, Depends(known_patient)]
