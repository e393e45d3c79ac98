"""Typed search attributes the journeys set. Values are never patient data."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

TEMPLATE = SearchAttributeKey.for_keyword("PitwallTemplate")
TEMPLATE_VERSION = SearchAttributeKey.for_int("PitwallTemplateVersion")
STAGE = SearchAttributeKey.for_keyword("PitwallStage")
NEEDS_ATTENTION = SearchAttributeKey.for_bool("PitwallNeedsAttention")
# Refill journeys: the refill-gap risk level (low / medium / high) and the PDC so far this
# measurement year, in percent (a figure, like the stage: nothing that names the patient).
RISK = SearchAttributeKey.for_keyword("PitwallRisk")
PDC = SearchAttributeKey.for_int("PitwallPdc")
# Set once at start by the client (pseudonymous ids), so journeys can be listed by them.
PATIENT = SearchAttributeKey.for_keyword("PitwallPatient")
PROGRAM = SearchAttributeKey.for_keyword("PitwallProgram")

ALL = (TEMPLATE, TEMPLATE_VERSION, STAGE, NEEDS_ATTENTION, PATIENT, PROGRAM, RISK, PDC)


def at_start(
    template_id: str, version: int, patient_ref: str, program: str
) -> TypedSearchAttributes:
    """What a journey is indexed by from its first moment (the workflow updates stage/attention)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TEMPLATE, template_id),
            SearchAttributePair(TEMPLATE_VERSION, version),
            SearchAttributePair(STAGE, "REFERRED"),
            SearchAttributePair(NEEDS_ATTENTION, False),
            SearchAttributePair(PATIENT, patient_ref),
            SearchAttributePair(PROGRAM, program),
        ]
    )


def cli_flags() -> list[str]:
    """`temporal server start-dev` flags that register them."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int", "BOOL": "Bool"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
