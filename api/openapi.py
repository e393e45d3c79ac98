"""The published OpenAPI document: every error documented as problem+json.

Routes declare which error statuses they answer (`problems(404, 409, ...)`); this module
gives each of them the `Problem` schema and the `application/problem+json` media type,
documents the partner webhooks (signed, answered 202), gives every operation that needs
an API key its 401 / 403 answers, and drops FastAPI's default
validation-error schema, which this API never sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from adapters import crm
from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, TWILIO_SIGNATURE_HEADER
from api.auth import BASIC_SCHEME, BEARER_SCHEME, HEADER_SCHEME
from contract.problems import Problem

PROBLEM_JSON = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS = {
    400: "Malformed callback.",
    401: "No valid API key (missing, unknown or revoked); on webhooks also a bad signature.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such journey, template or patient.",
    409: "The journey is in the wrong state for this (paused, finished, ...).",
    422: "Invalid request: the fields are listed; their values are never echoed.",
    500: "Unexpected error: an error_id to quote, no details.",
    503: "Temporal is unavailable: retry after Retry-After seconds.",
}

TAGS = [
    {"name": "journeys", "description": "Start, inspect, list and steer patient journeys."},
    {"name": "templates", "description": "Journey templates: versions, steps, diagrams."},
    {"name": "patients", "description": "A patient's profile, timeline, consents, preferences."},
    {"name": "webhooks", "description": "Signed partner callbacks (payer, pharmacy, ...)."},
    {"name": "ops", "description": "Health."},
]


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the error statuses a route answers."""
    return {code: {"description": DESCRIPTIONS[code]} for code in codes}


def _problem_content(status: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}
    if status == 503:
        doc["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return doc


def _secured(op: dict[str, Any]) -> None:
    """Operations that need a key answer 401 and 403 too."""
    for code in (401, 403):
        op.setdefault("responses", {}).setdefault(str(code), {"description": DESCRIPTIONS[code]})


def _webhook(op: dict[str, Any], path: str, keys: bool) -> None:
    if path.endswith("/sms"):
        headers = [TWILIO_SIGNATURE_HEADER]
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            },
        }
    elif path.endswith("/crm"):  # HubSpot-shaped: an array of events, its own signature
        headers = [crm.TIMESTAMP_HEADER, crm.SIGNATURE_HEADER]
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    else:
        headers = [TIMESTAMP_HEADER, SIGNATURE_HEADER]
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    op["parameters"] = [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
        for h in headers
    ]
    op["responses"] = {
        "202": {
            "description": "Received; each event delivered to its journey or kept for review.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["received", "outcomes"],
                        "properties": {
                            "received": {"type": "integer"},
                            "outcomes": {"type": "array", "items": {"type": "string"}},
                        },
                    }
                }
            },
        },
        **{str(code): {"description": DESCRIPTIONS[code]} for code in (400, 401, 500, 503)},
    }
    if keys:
        op["security"] = [{BEARER_SCHEME: []}, {HEADER_SCHEME: []}]
        if path.endswith("/sms"):
            op["security"].append({BASIC_SCHEME: []})
        op["responses"]["403"] = {"description": DESCRIPTIONS[403]}


def install(app: FastAPI, *, webhook_keys: bool = True) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=TAGS,
        )
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if webhook_keys:
            schemes[BASIC_SCHEME] = {
                "type": "http",
                "scheme": "basic",
                "description": "SMS webhooks (Twilio): the API key as the basic-auth password, "
                "embedded in the callback URL.",
            }
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        for path, operations in schema["paths"].items():
            for op in operations.values():
                if path.startswith("/v1/webhooks/"):
                    _webhook(op, path, webhook_keys)
                if op.get("security"):
                    _secured(op)
                for code, response in op.get("responses", {}).items():
                    if code.isdigit() and int(code) >= 400:
                        response.update(_problem_content(int(code)))
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
