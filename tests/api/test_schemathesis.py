"""Property-based fuzzing of the whole HTTP API against its own OpenAPI schema.

Schemathesis generates valid and invalid requests for every operation; the app (served
in this process, with the real dev server and worker behind it) must never answer 5xx,
must answer only documented statuses and content types, and every body must match the
documented schema. Invalid requests must be refused with a 4xx. Requests carry an admin
API key (so the fuzzing reaches past authentication); the patient of the schema's
examples (`MRN-0012345`) is registered, with a phone on file, so patient routes answer 2xx too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from tests.api.conftest import ApiStack, bearer

EXAMPLES_PER_OPERATION = 50
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


EXAMPLE_PATIENT = "MRN-0012345"


def fuzz(
    schema_document: dict[str, Any], base_url: str, headers: dict[str, str]
) -> Counter[tuple[str, int]]:
    """Run every operation in both modes; counts answers by (operation, status)."""
    schema = schemathesis.openapi.from_dict(schema_document)
    answers: Counter[tuple[str, int]] = Counter()

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails here
        strategies = [
            operation.as_strategy(generation_mode=mode)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
        strategies += schema.get_strategies_from_examples(operation)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(strategies))
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, timeout=15, headers=headers)
            answers[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

        call()
    return answers


async def test_fuzzed_requests_get_documented_answers_and_no_5xx(
    api: ApiStack, served: str
) -> None:
    telecom = [{"system": "phone", "value": "+15555550142"}]
    registered = await api.http.put(f"/v1/patients/{EXAMPLE_PATIENT}", json={"telecom": telecom})
    assert registered.status_code in (200, 201), registered.text
    headers = bearer(api.key("admin", name="schemathesis"))
    answers = await asyncio.to_thread(fuzz, api.app.openapi(), served, headers)
    operations = {operation for operation, _ in answers}
    assert len(operations) == 31, operations  # with /v1/webhooks/crm: the CRM is on in dev
    assert sum(answers.values()) > 10 * len(operations)
    # The fuzzing got past validation too: journeys were started and found.
    assert answers[("POST /v1/journeys", 201)] >= 1
    assert answers[("GET /v1/journeys", 200)] >= 1
    assert answers[("GET /v1/patients/{patient_id}/consents", 200)] >= 1
    assert answers[("PUT /v1/patients/{patient_id}/preferences", 200)] >= 1
    assert answers[("PUT /v1/patients/{patient_id}", 200)] >= 1
    # Authentication never got in the way: every call carried a valid admin key.
    assert not any(status in (401, 403) for (op, status) in answers if "/webhooks/" not in op)
