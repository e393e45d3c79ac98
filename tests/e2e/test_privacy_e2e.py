"""A caller's patient id and the patient's contact details stay in the store.

Two patients, registered and started over HTTP with ids a hub would really send (a
name-shaped `john-smith`, an MRN): neither the id nor any personal detail appears in
the journey's Temporal history (payloads decoded), its visibility record, the worker's
and the API's logs, or what the partners received, except the phone number in what the
SMS gateway received: it must deliver the text.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import FAST_PARAMS, FAST_PARTNERS, PROGRAM, TIME_SCALE, Stack

PHONE = "+15555550123"
PERSONAL = {
    "name": {"given": ["Johnathan"], "family": "Smithers"},
    "birth_date": "1968-11-23",
    "telecom": [
        {"system": "phone", "value": PHONE, "use": "mobile"},
        {"system": "email", "value": "johnathan.smithers@example.net"},
    ],
    "address": {"line": ["742 Evergreen Terrace"], "city": "Springfield", "postal_code": "49007"},
    "timezone": "America/Detroit",
    "caregiver": {"name": {"given": ["Marjorie"]}, "telecom": [{"system": "phone",
                  "value": "+15555550124"}]},
    "coverage": [{"payor": "payer-acme", "plan_type": "commercial", "subscriber_id": "ZXQ998877"}],
    "prescriber": {"npi": "1234567893", "name": "Dr. Hibbert"},
}  # fmt: skip
DETAILS = ("Johnathan", "Smithers", "1968-11-23", "johnathan.smithers", "Evergreen", "49007",
           "Marjorie", "5555550124", "ZXQ998877", "1234567893", "Hibbert")  # fmt: skip


def decoded(node: Any) -> Any:
    """A history as JSON with every payload's data decoded (base64 → its JSON text)."""
    if isinstance(node, dict):
        out = {k: decoded(v) for k, v in node.items()}
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            out["data"] = base64.b64decode(node["data"]).decode(errors="replace")
        return out
    if isinstance(node, list):
        return [decoded(v) for v in node]
    return node


def appears(detail: str, text: str) -> bool:
    """`detail` as a token of its own: a postal code inside a longer number (a timestamp,
    an event id) is not a leak."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(detail)}(?![0-9A-Za-z])", text) is not None


def read_logs(log_dir: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in log_dir.glob("*.log"))


async def open_case(stack: Stack, patient_id: str) -> tuple[str, str]:
    """Register, consent and start over HTTP; (pseudonym, journey id)."""
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        put = await api.put(f"/v1/patients/{patient_id}", json=PERSONAL)
        assert put.status_code == 201, put.text
        patient_ref = str(put.json()["patient_ref"])
        for purpose in ("treatment", "adherence"):
            consent = {"channel": "sms", "purpose": purpose, "program": PROGRAM}
            grant = await api.post(f"/v1/patients/{patient_id}/consents", json=consent)
            assert grant.status_code == 201, grant.text
        scenario = {**FAST_PARTNERS, "pa": "approve"}
        scripted = await api.put(
            f"{stack.sandbox_url}/_sandbox/scenarios/{patient_ref}", json=scenario
        )
        scripted.raise_for_status()
        body = {"template": "specialty_start", "template_version": 1,
                "patient_id": patient_id, "program": PROGRAM,
                "params": FAST_PARAMS, "time_scale": TIME_SCALE}  # fmt: skip
        started = await api.post("/v1/journeys", json=body)
        assert started.status_code == 201, started.text
        return patient_ref, str(started.json()["journey_id"])


async def test_patient_ids_and_contact_details_never_leave_the_store(stack: Stack) -> None:
    for patient_id in ("john-smith", "MRN-00482913"):
        patient_ref, journey_id = await open_case(stack, patient_id)
        state = await stack.finished(journey_id)
        assert state.status == "completed", state.attention_reason
        assert state.messages_sent == 2  # the welcome text and the refill reminder went out

        handle = stack.journeys.handle(journey_id)
        history = json.dumps(decoded((await handle.fetch_history()).to_json_dict()))
        assert patient_ref in history  # the scan reads the real payloads
        described = await handle.describe()
        visibility = json.dumps(
            {
                "id": described.id,
                "search": {k: str(v) for k, v in described.search_attributes.items()},
                "memo": str(await described.memo()),
                "summary": str(await described.static_summary()),
            }
        )
        logs = read_logs(Path(stack.children.log_dir))
        assert journey_id in logs  # the logs do talk about this journey
        async with httpx.AsyncClient() as sandbox:
            received = (await sandbox.get(f"{stack.sandbox_url}/_sandbox/received")).json()
        mine = [r for r in received if r.get("patient_ref") == patient_ref]
        assert len(mine) >= 5
        # The phone number reaches the SMS gateway (it must deliver the text), nobody else.
        with_phone = [r for r in received if PHONE in json.dumps(r)]
        assert all(r["service"] == "sms" for r in with_phone)
        partners = json.dumps([r for r in received if r not in with_phone])

        for where, text in {"history": history, "visibility": visibility, "logs": logs,
                            "partners": partners}.items():  # fmt: skip
            assert patient_id not in text, f"{patient_id} in {where}"
            leaked = [d for d in (*DETAILS, PHONE, PHONE[2:]) if appears(d, text)]
            assert not leaked, f"{leaked} in {where}"
