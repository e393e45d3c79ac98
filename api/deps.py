"""Typed dependencies for routes: `journeys: Journeys`, `templates: Templates`,
`store: PitwallStore`, ids."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from api.catalog import TemplateCatalog
from client.journeys import JourneyClient
from client.models import JOURNEY_ID
from domain.journey import PSEUDONYM, check_pseudonym
from store import Store


def journey_client(request: Request) -> JourneyClient:
    return cast(JourneyClient, request.app.state.journeys)


def template_catalog(request: Request) -> TemplateCatalog:
    return cast(TemplateCatalog, request.app.state.templates)


def pitwall_store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


def _pseudonymous_parts(journey_id: str) -> str:
    _, program, patient_ref, *key = journey_id.split("/")
    check_pseudonym(program, "program")
    check_pseudonym(patient_ref, "patient_ref")
    for part in key:
        check_pseudonym(part, "business_key")
    return journey_id


Journeys = Annotated[JourneyClient, Depends(journey_client)]
Templates = Annotated[TemplateCatalog, Depends(template_catalog)]
PitwallStore = Annotated[Store, Depends(pitwall_store)]
PatientRef = Annotated[
    str,
    Path(
        pattern=PSEUDONYM,
        description="Pseudonymous patient id (never a name, phone, MRN or date of birth).",
        examples=["pt-7f3a9c"],
    ),
    AfterValidator(lambda v: check_pseudonym(v, "patient_ref")),
]
JourneyId = Annotated[
    str,
    Path(
        pattern=JOURNEY_ID,
        description="journey/{program}/{patient_ref}[/{business_key}], as start returned it.",
        examples=["journey/demo-program/pt-7f3a9c"],
    ),
    AfterValidator(_pseudonymous_parts),
]
