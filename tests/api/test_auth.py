"""API keys: 401 without a valid key, 403 without the scope, the right scope gets in;
partner webhooks need their partner's key (when required); keys are stored hashed."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from adapters.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    sign_body,
    twilio_signature,
)
from api.app import create_app
from client.errors import Forbidden, Unauthenticated
from client.http import PitwallHttpClient
from contract.journeys import StartJourney
from settings import ReceiverSettings
from tests.api.conftest import (
    KNOWN_TEMPLATES,
    PROGRAM,
    TEMPLATE,
    ApiStack,
    app_settings,
    bearer,
    new_patient,
    running,
    start_body,
)
from tests.api.test_journeys_api import assert_problem

# One request per endpoint group: (method, path, body) builders.
Call = tuple[str, str, dict[str, Any] | None]


def calls(patient: str, journey_id: str) -> dict[str, list[Call]]:
    return {
        "journeys:write": [
            ("POST", "/v1/journeys", start_body(patient)),
            (
                "POST",
                f"/v1/journeys/{journey_id}/events",
                {"event_id": "auth-1", "type": "operator.note", "correlation_key": "n"},
            ),
        ],
        "journeys:read": [
            ("GET", f"/v1/journeys/{journey_id}", None),
            ("GET", "/v1/journeys", None),
            ("GET", "/v1/templates", None),
            ("GET", f"/v1/templates/{TEMPLATE}", None),
        ],
        "patients:read": [
            ("GET", f"/v1/patients/{patient}", None),
            ("GET", f"/v1/patients/{patient}/timeline", None),
            ("GET", f"/v1/patients/{patient}/consents", None),
            ("GET", f"/v1/patients/{patient}/preferences", None),
        ],
        "patients:write": [
            (
                "POST",
                f"/v1/patients/{patient}/consents",
                {"channel": "sms", "purpose": "treatment", "program": PROGRAM},
            ),
            ("POST", f"/v1/patients/{patient}/consents/revoke", {"reason": "test_only"}),
            ("PUT", f"/v1/patients/{patient}/preferences", {"language": "en"}),
            ("PUT", f"/v1/patients/{patient}", {"language": "en"}),
        ],
    }


async def call(
    http: httpx.AsyncClient, c: Call, headers: dict[str, str] | None = None
) -> httpx.Response:
    method, path, body = c
    return await http.request(method, path, json=body, headers=headers)


@pytest.fixture
def no_key(api: ApiStack) -> httpx.AsyncClient:
    """A client of the same app that sends no key unless told to."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://api")


async def setup_patient(api: ApiStack) -> tuple[str, str]:
    patient = new_patient()
    telecom = [{"system": "phone", "value": "+15555550199"}]
    put = await api.http.put(f"/v1/patients/{patient}", json={"telecom": telecom})
    assert put.status_code == 201, put.text
    return patient, await api.start(patient)


async def test_without_a_key_every_v1_route_is_401_with_a_bearer_challenge(
    api: ApiStack, no_key: httpx.AsyncClient
) -> None:
    patient, journey_id = await setup_patient(api)
    async with no_key:
        for group in calls(patient, journey_id).values():
            for c in group:
                response = await call(no_key, c)
                assert_problem(response, 401, "unauthenticated")
                assert response.headers["www-authenticate"] == 'Bearer realm="pitwall"'
        # Open: health, the schema and the docs.
        assert (await no_key.get("/healthz")).status_code == 200
        assert (await no_key.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer pw_nope",
        "Bearer pw_0123456789ab_" + "A" * 43,  # well-formed, unknown
        "Basic " + base64.b64encode(b"x:y").decode(),  # not accepted on the API
        "Bearer",
    ],
)
async def test_malformed_and_unknown_keys_are_401(
    api: ApiStack, no_key: httpx.AsyncClient, authorization: str
) -> None:
    async with no_key:
        response = await no_key.get("/v1/templates", headers={"Authorization": authorization})
    assert_problem(response, 401, "unauthenticated")


async def test_a_revoked_key_is_401_from_then_on(api: ApiStack, no_key: httpx.AsyncClient) -> None:
    key = api.key("journeys:read")
    async with no_key:
        assert (await no_key.get("/v1/templates", headers=bearer(key))).status_code == 200
        key_id = key.split("_")[1]
        revoked = api.store.api_keys.revoke(key_id)
        assert revoked is not None and revoked.revoked_at is not None
        response = await no_key.get("/v1/templates", headers=bearer(key))
    assert_problem(response, 401, "unauthenticated")


async def test_each_group_needs_its_scope_and_gets_in_with_it(
    api: ApiStack, no_key: httpx.AsyncClient
) -> None:
    patient, journey_id = await setup_patient(api)
    groups = calls(patient, journey_id)
    keys = {scope: api.key(scope) for scope in groups}
    async with no_key:
        for scope, group in groups.items():
            for c in group:
                for other, key in keys.items():
                    if other == scope:
                        continue
                    refused = await call(no_key, c, bearer(key))
                    body = assert_problem(refused, 403, "forbidden")
                    assert body["required_scope"] == scope
                allowed = await call(no_key, c, bearer(keys[scope]))
                assert allowed.status_code in (200, 201, 202), (scope, c, allowed.text)


async def test_x_api_key_header_and_admin_implies_every_scope(
    api: ApiStack, no_key: httpx.AsyncClient
) -> None:
    patient, journey_id = await setup_patient(api)
    admin = api.key("admin")
    async with no_key:
        for group in calls(patient, journey_id).values():
            for c in group:
                response = await call(no_key, c, {"X-API-Key": admin})
                assert response.status_code in (200, 201, 202), (c, response.text)


async def test_authentication_comes_before_validation_and_echoes_nothing(
    api: ApiStack, no_key: httpx.AsyncClient
) -> None:
    async with no_key:
        response = await no_key.post("/v1/journeys", json=start_body("5551234567"))
        read_only = await no_key.get(
            "/v1/patients/5551234567/consents", headers=bearer(api.key("journeys:read"))
        )
    assert_problem(response, 401, "unauthenticated")
    assert_problem(read_only, 403, "forbidden")
    assert "5551234567" not in response.text + read_only.text


async def test_a_start_carrying_intake_also_needs_patients_write(api: ApiStack) -> None:
    body = start_body(new_patient(), patient={"language": "es"})
    refused = await api.http.post(
        "/v1/journeys", json=body, headers=bearer(api.key("journeys:write"))
    )
    assert assert_problem(refused, 403, "forbidden")["required_scope"] == "patients:write"
    both = api.key("journeys:write", "patients:write")
    allowed = await api.http.post("/v1/journeys", json=body, headers=bearer(both))
    assert allowed.status_code == 201, allowed.text


async def test_keys_are_stored_hashed_never_the_secret(api: ApiStack) -> None:
    made = api.store.api_keys.create("hash-check", ["journeys:read"])
    secret_part = made.secret.split("_", 2)[2]
    with api.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_key")).all()
    dumped = json.dumps([[str(v) for v in row] for row in rows])
    assert made.key_id in dumped
    assert secret_part not in dumped and made.secret not in dumped
    assert secret_part not in repr(made.key)
    db = api.store.engine.url.database
    if api.store.engine.dialect.name == "sqlite" and db:
        for path in Path(db).parent.glob(Path(db).name + "*"):
            assert secret_part.encode() not in path.read_bytes(), path
    # It still verifies, and using it is recorded (at most once a minute).
    verified = api.store.api_keys.verify(made.secret)
    assert verified is not None and verified.last_used_at is not None
    wrong_last = "y" if made.secret.endswith("x") else "x"  # never the secret itself
    assert api.store.api_keys.verify(made.secret[:-1] + wrong_last) is None


async def test_http_client_raises_unauthenticated_and_forbidden(api: ApiStack) -> None:
    transport = httpx.ASGITransport(app=api.app)
    async with PitwallHttpClient("http://api", transport=transport) as anonymous:
        with pytest.raises(Unauthenticated):
            await anonymous.templates()
    async with PitwallHttpClient(
        "http://api", api_key=api.key("journeys:read"), transport=transport
    ) as reader:
        assert [t.id for t in await reader.templates()] == KNOWN_TEMPLATES
        with pytest.raises(Forbidden) as refused:
            await reader.start(
                StartJourney(template=TEMPLATE, patient_id=new_patient(), program=PROGRAM)
            )
    assert refused.value.required_scope == "journeys:write"


# -- webhooks -------------------------------------------------------------------------------


def signed_pharmacy(event_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"event_id": event_id, "type": "pharmacy.shipped", "rx_id": "RX-NOBODY",
         "occurred_at": "2026-01-01T00:00:00Z"}
    ).encode()  # fmt: skip
    ts = str(int(time.time()))
    return body, {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign_body("dev-webhook-secret", ts, body)}


async def test_webhooks_need_the_partner_scope(api: ApiStack, no_key: httpx.AsyncClient) -> None:
    assert api.settings.receiver.require_webhook_keys
    secret = api.settings.receiver.webhook_secret.get_secret_value()
    assert secret == "dev-webhook-secret"
    body, headers = signed_pharmacy("evt-auth-1")
    async with no_key:
        missing = await no_key.post("/v1/webhooks/pharmacy", content=body, headers=headers)
        other = await no_key.post(
            "/v1/webhooks/pharmacy", content=body,
            headers={**headers, **bearer(api.key("webhooks:payer"))},
        )  # fmt: skip
        right = await no_key.post(
            "/v1/webhooks/pharmacy", content=body,
            headers={**headers, "X-API-Key": api.key("webhooks:pharmacy")},
        )  # fmt: skip
        forged = await no_key.post(
            "/v1/webhooks/pharmacy", content=body,
            headers={**headers, SIGNATURE_HEADER: "0" * 64, **bearer(api.key("webhooks:pharmacy"))},
        )  # fmt: skip
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert assert_problem(other, 403, "forbidden")["required_scope"] == "webhooks:pharmacy"
    assert right.status_code == 202 and right.json()["outcomes"] == ["kept_for_review"]
    assert_problem(forged, 401, "bad-signature")  # the signature still counts


async def test_sms_webhook_challenges_basic_and_takes_the_key_as_password(
    api: ApiStack, no_key: httpx.AsyncClient
) -> None:
    url = f"{api.settings.receiver.base_url()}/v1/webhooks/sms"
    form = {"MessageSid": "SMauth1", "MessageStatus": "delivered", "To": "+15555550199"}
    token = api.settings.partners.twilio_auth_token.get_secret_value()
    # Twilio signs the URL without the credentials it then sends as basic auth.
    headers = {TWILIO_SIGNATURE_HEADER: twilio_signature(token, url, form)}
    basic = "Basic " + base64.b64encode(f"twilio:{api.key('webhooks:sms')}".encode()).decode()
    wrong = "Basic " + base64.b64encode(f"twilio:{api.key('webhooks:email')}".encode()).decode()
    async with no_key:
        first = await no_key.post("/v1/webhooks/sms", data=form, headers=headers)
        refused = await no_key.post(
            "/v1/webhooks/sms", data=form, headers={**headers, "Authorization": wrong}
        )
        answered = await no_key.post(
            "/v1/webhooks/sms", data=form, headers={**headers, "Authorization": basic}
        )
    assert_problem(first, 401, "unauthenticated")
    assert first.headers["www-authenticate"] == 'Basic realm="pitwall"'
    assert_problem(refused, 403, "forbidden")
    assert answered.status_code == 202, answered.text


async def test_webhook_keys_can_be_switched_off(api: ApiStack, tmp_path: Path) -> None:
    settings = app_settings(tmp_path, "nowhere-queue")
    settings.receiver = ReceiverSettings(require_webhook_keys=False)
    app = create_app(settings, temporal=api.temporal)
    async with running(app, key=False) as http:
        body, headers = signed_pharmacy("evt-auth-off")
        response = await http.post("/v1/webhooks/pharmacy", content=body, headers=headers)
        schema = (await http.get("/openapi.json")).json()
        still = await http.get("/v1/templates")
    assert response.status_code == 202, response.text
    assert "security" not in schema["paths"]["/v1/webhooks/pharmacy"]["post"]
    assert "security" in schema["paths"]["/v1/journeys"]["post"]
    assert_problem(still, 401, "unauthenticated")  # only the webhooks are switched


# -- CLI ------------------------------------------------------------------------------------


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    from starter import app

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "hub-intake", "--scope", "journeys:write", "-s", "journeys:read",
              "--json", "--database-url", url],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["key"].startswith(f"pw_{key['key_id']}_")
    assert key["scopes"] == ["journeys:write", "journeys:read"]

    listed = runner.invoke(app, ["keys", "list", "--database-url", url])
    assert key["key_id"] in listed.output and "hub-intake" in listed.output
    assert key["key"].split("_", 2)[2] not in listed.output

    bad = runner.invoke(app, ["keys", "create", "x", "--scope", "root", "--database-url", url])
    assert bad.exit_code == 2 and "unknown scope" in bad.output

    revoked = runner.invoke(app, ["keys", "revoke", key["key_id"], "--database-url", url])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    active = runner.invoke(app, ["keys", "list", "--active", "--database-url", url])
    assert key["key_id"] not in active.output
    missing = runner.invoke(app, ["keys", "revoke", "000000000000", "--database-url", url])
    assert missing.exit_code == 2
