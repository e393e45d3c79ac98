"""E-consent / e-signature adapter.

Request: ``POST {base}/consent/requests`` JSON ``{"patient_ref", "journey_ref", "program",
"documents": [...]}`` → 201 ``{"request_id": "cr_…", "status": "sent"}``.

Callback (JSON, Pitwall HMAC-signed)::

    {"event_id", "type": "consent.signed" | "consent.declined", "request_id",
     "journey_ref", "patient_ref", "occurred_at", "documents": ["hipaa_authorization", ...]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters._common import load_json, now, parse_time, require_str
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp, classify_error_object
from domain.partners import ConsentRequest, ConsentRequestResult, PartnerEvent

PARTNER = "consent"
EVENT_TYPES = frozenset({"consent.signed", "consent.declined"})


def parse_callback(body: bytes | str | Mapping[str, Any]) -> PartnerEvent:
    what = "consent callback"
    data = load_json(body, what)
    if not isinstance(data, Mapping):
        raise CallbackInvalid(f"{what}: body is not a JSON object")
    event_id = require_str(data, "event_id", what)
    kind = require_str(data, "type", what)
    if kind not in EVENT_TYPES:
        raise CallbackInvalid(f"{what}: unknown type")
    request_id = require_str(data, "request_id", what)
    documents = data.get("documents") or []
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise CallbackInvalid(f"{what}: documents must be a list of strings")
    journey_ref = data.get("journey_ref")
    return PartnerEvent(
        event_id=event_id,
        type=kind,
        correlation_key=request_id,
        journey_ref=journey_ref if isinstance(journey_ref, str) and journey_ref else None,
        occurred_at=parse_time(data.get("occurred_at")) or now(),
        data={"request_id": request_id, "documents": list(documents)},
    )


class ConsentClient(PartnerClient):
    def __init__(
        self, base_url: str, http: httpx.AsyncClient | None = None, timeout: float = 10.0
    ) -> None:
        self._http = PartnerHttp(
            PARTNER, base_url, http=http, timeout=timeout, classify=classify_error_object
        )

    async def request(self, req: ConsentRequest) -> ConsentRequestResult:
        payload = {
            "patient_ref": req.patient_ref,
            "journey_ref": req.journey_ref,
            "program": req.program,
            "documents": list(req.documents),
        }
        response = await self._http.post(
            "/consent/requests", idempotency_key=req.idempotency_key, json=payload
        )
        body = self._http.json(response)
        request_id = body.get("request_id") if isinstance(body, Mapping) else None
        if not isinstance(request_id, str) or not request_id:
            raise PartnerUnavailable(
                PARTNER, response.status_code, "malformed response: no request_id"
            )
        return ConsentRequestResult(request_id=request_id)


Client = ConsentClient  # what activities/ builds for partner 'consent'
