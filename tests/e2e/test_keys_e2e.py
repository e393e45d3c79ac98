"""API keys across the real processes: partner callbacks need their partner's key."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx

from adapters.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    sign_body,
    twilio_signature,
)
from tests.e2e.conftest import SECRET, TWILIO_TOKEN, Stack


def signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign_body(SECRET, ts, body)}


async def test_signed_callbacks_still_need_the_partner_key(stack: Stack) -> None:
    body = json.dumps(
        {"event_id": "evt-keys-1", "type": "pharmacy.shipped", "rx_id": "RX-KEYS",
         "occurred_at": "2026-01-01T00:00:00Z"}
    ).encode()  # fmt: skip
    url = f"{stack.receiver_url}/v1/webhooks/pharmacy"
    payer_only = stack.store.api_keys.create("e2e-payer", ["webhooks:payer"]).secret
    async with httpx.AsyncClient() as http:
        no_key = await http.post(url, content=body, headers=signed(body))
        wrong = await http.post(
            url, content=body, headers={**signed(body), "Authorization": f"Bearer {payer_only}"}
        )
        right = await http.post(
            url, content=body, headers={**signed(body), **stack.partner_headers}
        )
    assert no_key.status_code == 401
    assert no_key.json()["type"].endswith("/unauthenticated")
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 403 and wrong.json()["required_scope"] == "webhooks:pharmacy"
    assert right.status_code == 202, right.text


async def test_sms_callbacks_challenge_basic_auth_and_take_the_key_as_password(
    stack: Stack,
) -> None:
    url = f"{stack.receiver_url}/v1/webhooks/sms"
    form = {"MessageSid": "SMkeys1", "MessageStatus": "delivered", "To": "+15555550199"}
    headers = {TWILIO_SIGNATURE_HEADER: twilio_signature(TWILIO_TOKEN, url, form)}
    basic = base64.b64encode(f"twilio:{stack.partner_key}".encode()).decode()
    async with httpx.AsyncClient() as http:
        first = await http.post(url, data=form, headers=headers)
        again = await http.post(
            url, data=form, headers={**headers, "Authorization": f"Basic {basic}"}
        )
    assert first.status_code == 401
    assert first.headers["www-authenticate"].startswith("Basic")
    assert again.status_code == 202, again.text


async def test_timeline_over_http_shows_the_sandbox_callbacks(stack: Stack) -> None:
    patient = stack.new_patient({"pa": "approve", "ship_after_seconds": 600})
    journey = await stack.start(patient)
    url = f"{stack.receiver_url}/v1/patients/{stack.external[patient]}/timeline"
    auth = {"Authorization": f"Bearer {stack.admin_key}"}

    async with httpx.AsyncClient(headers=auth) as http:
        deadline = time.monotonic() + 30
        entries: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            answer = await http.get(url, params={"journey": journey})
            assert answer.status_code == 200, answer.text
            entries = answer.json()["entries"]
            if any(e["type"] == "partner.callback" for e in entries):
                break
            await asyncio.sleep(0.2)
        unauthenticated = await http.get(url, headers={"Authorization": "Bearer pw_nope"})
    assert any(e["type"] == "partner.callback" for e in entries), entries
    assert all(e["journey_id"] == journey for e in entries)
    assert unauthenticated.status_code == 401
