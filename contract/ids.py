"""Identifier shapes of the /v1 API.

A caller names a patient by its own id (`PatientId`: an MRN, a hub case id); Pitwall
maps it to a pseudonym of its own, and only the pseudonym reaches Temporal, partners
and logs. Programs and business keys go into workflow ids, so they must be
pseudonymous themselves: a pattern (published in the OpenAPI schema) and
`check_pseudonym`, which refuses values that look like phone numbers, dates or SSNs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from domain.journey import PSEUDONYM, check_pseudonym

TEMPLATE_ID = r"^[a-z][a-z0-9_]{0,63}$"
STAGE = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_PART = r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}"
JOURNEY_ID = rf"^journey/{_PART}/{_PART}(/{_PART})?$"
EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
EVENT_TYPE = r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$"
CORRELATION_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"
PAGE_TOKEN = r"^[A-Za-z0-9_-]{24,4096}$"
# The caller's own patient id: letters, digits and . _ : @ - (fits a URL path segment).
PATIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

JsonScalar = str | int | float | bool | None


def pseudonymous(field: str) -> Any:
    return AfterValidator(lambda value: value if value is None else check_pseudonym(value, field))


PatientId = Annotated[
    str,
    Field(
        pattern=PATIENT_ID,
        description="Your id for the patient (MRN, hub case id...). Pitwall keeps it only "
        "as a keyed hash and uses a pseudonym of its own everywhere else.",
        examples=["MRN-0012345"],
    ),
]
Program = Annotated[
    str,
    Field(pattern=PSEUDONYM, description="Program id.", examples=["demo-program"]),
    pseudonymous("program"),
]
BusinessKey = Annotated[
    str,
    Field(pattern=PSEUDONYM, description="Tells two journeys of one program apart."),
    pseudonymous("business_key"),
]
