"""The sandbox over raw HTTP: validation like the real partners, control API, CLI."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import httpx

from adapters import payer
from tests.sandbox.harness import TWILIO_SID, TWILIO_TOKEN, get_json, put_scenario

ROOT = Path(__file__).resolve().parents[2]
STANDARDS = ROOT / "tests" / "fixtures" / "standards" / "pas"
FHIR = {"Content-Type": "application/fhir+json"}


async def test_invalid_pas_bundle_gets_400_operation_outcome(sandbox_url: str) -> None:
    body = (
        STANDARDS / "request" / "INVALID-inferno-nonconformant_pas_bundle_v110.json"
    ).read_bytes()
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox_url}/fhir/Claim/$submit", content=body, headers=FHIR)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["code"] == "required"


async def test_official_referral_bundle_is_adjudicated(sandbox_url: str) -> None:
    body = (STANDARDS / "request" / "Bundle-ReferralAuthorizationBundleExample.json").read_bytes()
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox_url}/fhir/Claim/$submit",
            content=body,
            headers={**FHIR, "Idempotency-Key": "official-referral"},
        )
    assert response.status_code == 200
    result = payer.parse_pas_response(response.content)
    assert result.outcome == "approved"
    rows = await get_json(sandbox_url, "/_sandbox/received", patient_ref="12345678901")
    assert rows[0]["idempotency_key"] == "official-referral"


async def test_not_json_and_wrong_resource(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{sandbox_url}/fhir/Claim/$submit", content=b"{", headers=FHIR)
        wrong = await http.post(
            f"{sandbox_url}/fhir/CoverageEligibilityRequest", json={"resourceType": "Claim"}
        )
    assert bad.status_code == wrong.status_code == 400
    assert bad.json()["resourceType"] == "OperationOutcome"


async def test_twilio_style_errors(sandbox_url: str) -> None:
    url = f"{sandbox_url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    async with httpx.AsyncClient() as http:
        missing_to = await http.post(
            url, data={"From": "+15555550100", "Body": "hi"}, auth=(TWILIO_SID, TWILIO_TOKEN)
        )
        no_auth = await http.post(url, data={"To": "+15555550123"})
    assert missing_to.status_code == 400
    assert missing_to.json()["code"] == 21604
    assert missing_to.json()["more_info"].endswith("21604")
    assert no_auth.status_code == 401
    assert no_auth.json()["code"] == 20003


async def test_sendgrid_requires_bearer(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox_url}/v3/mail/send", json={})
    assert response.status_code == 401
    assert "errors" in response.json()


async def test_scenario_api(sandbox_url: str, patient: str) -> None:
    async with httpx.AsyncClient() as http:
        unknown = await http.put(
            f"{sandbox_url}/_sandbox/scenarios/{patient}", json={"pa": "approve", "bogus": 1}
        )
        bad_value = await http.put(
            f"{sandbox_url}/_sandbox/scenarios/{patient}", json={"pa": "maybe"}
        )
        defaults = await http.get(f"{sandbox_url}/_sandbox/scenarios/{patient}")
    assert unknown.status_code == 422
    assert bad_value.status_code == 422
    assert defaults.json()["pa"] == "approve"
    assert defaults.json()["pa_required"] is True
    assert defaults.json()["consent"] == "sign"
    stored = await put_scenario(sandbox_url, patient, pa="pend_deny", outage=None, slow_ms=5)
    assert (stored["pa"], stored["slow_ms"], stored["days_supply"]) == ("pend_deny", 5, 28)


async def test_requests_without_key_are_distinct_rows(sandbox_url: str, patient: str) -> None:
    payload = {"patient_ref": patient, "documents": ["hipaa_authorization"]}
    await put_scenario(sandbox_url, patient, consent="never")
    async with httpx.AsyncClient() as http:
        for _ in range(2):
            response = await http.post(f"{sandbox_url}/consent/requests", json=payload)
            assert response.status_code == 201
    rows = await get_json(sandbox_url, "/_sandbox/received", service="consent", patient_ref=patient)
    assert [r["attempts"] for r in rows] == [1, 1]
    assert await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_starts_and_refuses_a_busy_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "SANDBOX_CALLBACK_URL": "http://127.0.0.1:1",
        "SANDBOX_WEBHOOK_SECRET": "s",
        "SANDBOX_TWILIO_AUTH_TOKEN": "t",
    }
    cmd = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        health = None
        deadline = time.monotonic() + 15
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                try:
                    health = (await http.get(f"http://127.0.0.1:{port}/_sandbox/health")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert health is not None and health["ok"] is True
        assert health["callback_url"] == "http://127.0.0.1:1"

        second = await asyncio.create_subprocess_exec(
            *cmd, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(second.communicate(), 15)
        assert second.returncode == 1
        lines = (out + err).decode().strip().splitlines()
        assert lines == [f"sandbox: port {port} on 127.0.0.1 is already in use"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_reset_clears_state(sink: object) -> None:
    # A private sandbox, so the shared one keeps its history for other tests.
    from sandbox.app import create_app
    from tests.sandbox.harness import ServerThread

    server = ServerThread(create_app("http://127.0.0.1:1", "s", "t")).start()
    try:
        await put_scenario(server.url, "p1", pa="deny")
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{server.url}/consent/requests",
                json={"patient_ref": "p1", "documents": ["x"]},
            )
            assert len((await http.get(f"{server.url}/_sandbox/received")).json()) == 1
            await http.post(f"{server.url}/_sandbox/reset")
            assert (await http.get(f"{server.url}/_sandbox/received")).json() == []
            assert (await http.get(f"{server.url}/_sandbox/scenarios/p1")).json()["pa"] == "approve"
    finally:
        server.stop()
