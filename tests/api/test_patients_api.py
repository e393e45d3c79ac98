"""/v1/patients over HTTP: profile, timeline, consents and preferences; no PHI comes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import PROGRAM, ApiStack, new_patient
from tests.api.test_journeys_api import assert_problem

PHONE = "+15555550199"
EMAIL = "someone.private@example.com"


@dataclass(frozen=True)
class Registered:
    id: str  # the caller's own id (what the API takes)
    ref: str  # Pitwall's pseudonym (what the store and journeys hold)


async def patient(
    api: ApiStack, phone: str | None = PHONE, email: str | None = EMAIL
) -> Registered:
    """A patient registered over HTTP, as a hub intake service would."""
    patient_id = new_patient()
    telecom = [{"system": "phone", "value": phone}] if phone else []
    telecom += [{"system": "email", "value": email}] if email else []
    put = await api.http.put(
        f"/v1/patients/{patient_id}", json={"telecom": telecom, "timezone": "America/Chicago"}
    )
    assert put.status_code == 201, put.text
    return Registered(patient_id, put.json()["patient_ref"])


def grant(**extra: Any) -> dict[str, Any]:
    return {"channel": "sms", "purpose": "treatment", "program": PROGRAM, **extra}


async def test_profile_names_what_is_on_file_never_the_values(api: ApiStack) -> None:
    p = await patient(api)
    response = await api.http.get(f"/v1/patients/{p.id}")
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["patient_ref"] == p.ref and profile["status"] == "active"
    assert profile["on_file"] == ["phone", "email"]
    assert profile["timezone"] == "America/Chicago"
    assert profile["consents_in_force"] == 0 and profile["do_not_contact"] is False
    assert PHONE not in response.text and "private" not in response.text


async def test_unknown_patient_is_404_everywhere(api: ApiStack) -> None:
    ref = "pt-nobody-at-all"
    for method, path, body in [
        ("GET", "", None),
        ("GET", "/timeline", None),
        ("GET", "/consents", None),
        ("POST", "/consents", grant()),
        ("POST", "/consents/revoke", {"reason": "patient_request"}),
        ("GET", "/preferences", None),
        ("PUT", "/preferences", {}),
    ]:
        response = await api.http.request(method, f"/v1/patients/{ref}{path}", json=body)
        assert_problem(response, 404, "patient-not-found")
        assert ref not in response.text


@pytest.mark.parametrize("bad", ["has space", "semi;colon", "x" * 129])
async def test_a_malformed_patient_id_is_422_and_never_echoed(api: ApiStack, bad: str) -> None:
    for path in ("", "/timeline", "/consents", "/preferences"):
        response = await api.http.get(f"/v1/patients/{bad}{path}")
        body = assert_problem(response, 422, "invalid-request")
        assert body["errors"][0]["field"] == "path.patient_id"
        assert bad not in response.text


async def test_grant_is_idempotent_masks_the_address_and_lands_on_the_timeline(
    api: ApiStack,
) -> None:
    p = await patient(api)
    url = f"/v1/patients/{p.id}/consents"
    first = await api.http.post(url, json=grant(evidence_ref="form-17"))
    again = await api.http.post(url, json=grant(evidence_ref="form-17"))
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    consent = first.json()
    assert consent["address"] == "+1•••••0199"
    assert consent["in_force"] is True and consent["method"] == "enrollment_form"

    email = await api.http.post(url, json=grant(channel="email", purpose="adherence"))
    assert email.status_code == 201 and email.json()["address"] == "s•••@e•••.com"

    listing = await api.http.get(url)
    assert listing.status_code == 200
    assert [c["id"] for c in listing.json()["in_force"]] == [consent["id"], email.json()["id"]]
    for response in (first, email, listing):
        assert PHONE not in response.text and "private" not in response.text

    # The send-time check sees the consent the API recorded.
    decision = api.store.directory.decide(p.ref, "sms", "treatment", PROGRAM)
    assert decision.reason is None and decision.consent_id == consent["id"]

    timeline = (await api.http.get(f"/v1/patients/{p.id}/timeline")).json()["entries"]
    changes = [e for e in timeline if e["type"] == "consent.changed"]
    assert len(changes) == 2
    assert changes[0]["summary"] == "consent granted sms/treatment/api-program via enrollment_form"
    assert changes[0]["correlation"]["consent_id"] == consent["id"]
    assert changes[0]["correlation"]["api_key"] == api.admin_key.split("_")[1]


async def test_grant_refusals(api: ApiStack) -> None:
    p = await patient(api, email=None)
    url = f"/v1/patients/{p.id}/consents"
    bad_phone = await api.http.post(url, json=grant(address="555-0199 call me"))
    body = assert_problem(bad_phone, 422, "invalid-request")
    assert body["errors"][0]["field"] == "body.address" and "call me" not in bad_phone.text
    nothing_on_file = await api.http.post(url, json=grant(channel="email"))
    assert_problem(nothing_on_file, 422, "no-contact-address")
    given = await api.http.post(url, json=grant(channel="email", address="pat@example.org"))
    assert given.status_code == 201 and given.json()["address"] == "p•••@e•••.org"
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    expired = await api.http.post(url, json=grant(expires_at=past))
    assert assert_problem(expired, 422, "invalid-request")["errors"][0]["field"] == (
        "body.expires_at"
    )
    unknown = await api.http.post(url, json=grant(channel="pigeon", name="Jane"))
    fields = {e["field"] for e in assert_problem(unknown, 422, "invalid-request")["errors"]}
    assert fields == {"body.channel", "body.name"}


async def test_revoke_by_filter_keeps_history(api: ApiStack) -> None:
    p = await patient(api)
    url = f"/v1/patients/{p.id}/consents"
    for purpose in ("treatment", "adherence"):
        assert (await api.http.post(url, json=grant(purpose=purpose))).status_code == 201
    email = (await api.http.post(url, json=grant(channel="email"))).json()

    revoked = await api.http.post(
        f"{url}/revoke", json={"reason": "patient_request", "channel": "sms"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] == 2 and len(revoked.json()["consent_ids"]) == 2
    again = await api.http.post(
        f"{url}/revoke", json={"reason": "patient_request", "channel": "sms"}
    )
    assert again.json() == {"revoked": 0, "consent_ids": []}

    consents = (await api.http.get(url)).json()
    assert [c["id"] for c in consents["in_force"]] == [email["id"]]
    assert len(consents["history"]) == 3
    gone = [c for c in consents["history"] if c["channel"] == "sms"]
    assert all(c["status"] == "inactive" and c["revoked_reason"] == "patient_request" for c in gone)
    assert api.store.directory.decide(p.ref, "sms", "treatment", PROGRAM).reason == "no_consent"

    bad = await api.http.post(f"{url}/revoke", json={"reason": "Because Jane asked"})
    assert_problem(bad, 422, "invalid-request")
    assert "Jane" not in bad.text


async def test_timeline_filters(api: ApiStack) -> None:
    p = await patient(api)
    await api.http.post(f"/v1/patients/{p.id}/consents", json=grant())
    await api.http.put(f"/v1/patients/{p.id}/preferences", json={"language": "es"})
    url = f"/v1/patients/{p.id}/timeline"

    everything = (await api.http.get(url)).json()["entries"]
    kinds = ["patient.registered", "consent.changed", "preferences.changed"]
    assert [e["type"] for e in everything] == kinds
    assert [e["occurred_at"] for e in everything] == sorted(e["occurred_at"] for e in everything)
    only = (await api.http.get(url, params={"type": "preferences.changed"})).json()["entries"]
    assert [e["type"] for e in only] == ["preferences.changed"]
    both = await api.http.get(url, params=[("type", "consent.changed"), ("type", "x.y")])
    assert len(both.json()["entries"]) == 1
    assert len((await api.http.get(url, params={"limit": 1})).json()["entries"]) == 1
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await api.http.get(url, params={"since": later})).json()["entries"] == []
    other = await api.http.get(url, params={"journey": f"journey/{PROGRAM}/{p.ref}"})
    assert other.status_code == 200 and other.json()["entries"] == []
    for params in ({"type": "Not A Type"}, {"limit": 0}, {"journey": "journey/p/5551234567"}):
        assert_problem(await api.http.get(url, params=params), 422, "invalid-request")


async def test_preferences_are_versions_and_do_not_contact_holds_at_send_time(
    api: ApiStack,
) -> None:
    p = await patient(api)
    await api.http.post(f"/v1/patients/{p.id}/consents", json=grant())
    url = f"/v1/patients/{p.id}/preferences"
    empty = await api.http.get(url)
    assert empty.status_code == 200
    assert empty.json() == {
        "patient_ref": p.ref,
        "current": None,
        "opted_out": False,
        "history": [],
    }

    first = await api.http.put(
        url,
        json={"channel_ranking": ["sms", "email"], "language": "es-US",
              "quiet_hours": {"start": "21:30", "end": "07:00"}, "reason": "patient_request"},
    )  # fmt: skip
    assert first.status_code == 200, first.text
    current = first.json()["current"]
    assert current["channel_ranking"] == ["sms", "email"] and current["language"] == "es-US"
    assert current["quiet_hours"] == {"start": "21:30", "end": "07:00"}
    assert current["source"] == "api" and current["do_not_contact"] is False

    second = await api.http.put(url, json={"do_not_contact": True})
    prefs = second.json()
    assert len(prefs["history"]) == 2 and prefs["current"]["do_not_contact"] is True
    assert prefs["current"]["language"] is None  # PUT replaces the whole set
    assert prefs["history"][0] == current
    assert api.store.directory.decide(p.ref, "sms", "treatment", PROGRAM).reason == "do_not_contact"
    profile = (await api.http.get(f"/v1/patients/{p.id}")).json()
    assert profile["do_not_contact"] is True

    for body in (
        {"channel_ranking": ["sms", "sms"]},
        {"quiet_hours": {"start": "08:00", "end": "08:00"}},
        {"language": "English"},
        {"channel_ranking": ["fax"]},
        {"do_not_contact": True, "phone": PHONE},
    ):
        response = await api.http.put(url, json=body)
        assert_problem(response, 422, "invalid-request")
        assert PHONE not in response.text
    assert len((await api.http.get(url)).json()["history"]) == 2


async def test_a_forgotten_patient_is_unlinked_from_the_callers_id(api: ApiStack) -> None:
    p = await patient(api)
    await api.http.post(f"/v1/patients/{p.id}/consents", json=grant())
    api.store.forget(p.ref)
    # The caller's id no longer leads anywhere: the link itself was erased.
    assert_problem(await api.http.get(f"/v1/patients/{p.id}"), 404, "patient-not-found")
    grant_again = await api.http.post(f"/v1/patients/{p.id}/consents", json=grant())
    assert_problem(grant_again, 404, "patient-not-found")
    # Registering again starts a new, unlinked record with nothing of the old one.
    again = await api.http.put(f"/v1/patients/{p.id}", json={"language": "es"})
    assert again.status_code == 201 and again.json()["patient_ref"] != p.ref
    assert again.json()["consents_in_force"] == 0
    old = api.store.patients.get(p.ref)
    assert old is not None and old.forgotten_at is not None and old.phone is None


FULL_REGISTRATION: dict[str, Any] = {
    "name": {"given": ["Maria", "Luisa"], "family": "Gonzalez"},
    "birth_date": "1971-04-09",
    "telecom": [
        {"system": "phone", "value": "+15555550177", "use": "mobile"},
        {"system": "email", "value": "maria.gonzalez@example.com"},
    ],
    "address": {"line": ["12 Elm St"], "city": "Springfield", "state": "IL",
                "postal_code": "62701", "country": "US"},
    "timezone": "America/Chicago",
    "language": "es-US",
    "caregiver": {"name": {"given": ["Ana"], "family": "Gonzalez"}, "relationship": "daughter",
                  "telecom": [{"system": "phone", "value": "+15555550178"}]},
    "coverage": [{"payor": "payer-acme", "plan_type": "commercial", "subscriber_id": "ACM123456789",
                  "rx_bin": "610014", "rx_pcn": "PCN1"}],
    "prescriber": {"npi": "1234567893", "name": "Dr. Okafor"},
}  # fmt: skip
SECRETS_IN_IT = ("Maria", "Gonzalez", "1971", "5555550177", "maria.gonzalez", "Elm", "62701",
                 "ACM123456789", "1234567893", "Okafor", "Ana")  # fmt: skip


async def test_registration_creates_updates_and_audits_without_values(api: ApiStack) -> None:
    patient_id = new_patient()
    url = f"/v1/patients/{patient_id}"
    created = await api.http.put(url, json=FULL_REGISTRATION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["created"] is True and body["timezone"] == "America/Chicago"
    assert body["contacts"] == {"phone": "+1•••••0177", "email": "m•••@e•••.com",
                                "caregiver_phone": "+1•••••0178"}  # fmt: skip
    assert body["coverages"] == [
        {"rank": 1, "payor": "payer-acme", "plan_type": "commercial", "subscriber_id": "•••89"}
    ]
    assert body["prescriber"] is True and "phone" in body["changed"]

    again = await api.http.put(url, json=FULL_REGISTRATION)
    assert again.status_code == 200 and again.json()["changed"] == []
    moved = await api.http.put(url, json={"timezone": "America/Denver"})
    assert moved.json()["changed"] == ["timezone"] and moved.json()["language"] == "es-US"

    timeline = (await api.http.get(f"{url}/timeline")).json()["entries"]
    assert [e["type"] for e in timeline] == ["patient.registered", "patient.updated"]
    assert "timezone" in timeline[1]["summary"]
    stored = api.store.patients.get(api.ref(patient_id))
    assert stored is not None and stored.given_name == "Maria Luisa"
    assert stored.timezone == "America/Denver" and stored.caregiver_relationship == "daughter"
    for response in (created, again, moved):
        text = response.text
        assert not [secret for secret in SECRETS_IN_IT if secret in text], text
    # What the entries say (timestamps and ids are random digits: "…1971…" can be a time).
    said = str([(e["summary"], e["correlation"]) for e in timeline])
    assert not [s for s in SECRETS_IN_IT if s in said]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"telecom": [{"system": "phone", "value": "call 555-0199"}]}, "body.telecom[0].value"),
        ({"telecom": [{"system": "email", "value": "nobody"}]}, "body.telecom[0].value"),
        ({"timezone": "Mars/Olympus_Mons"}, "body.timezone"),
        ({"prescriber": {"npi": "12345"}}, "body.prescriber.npi"),
        ({"coverage": [{"payor": "p", "plan_type": "medicare_part_z"}]},
         "body.coverage.0.plan_type"),
    ],
)  # fmt: skip
async def test_a_bad_registration_is_422_names_the_field_and_writes_nothing(
    api: ApiStack, change: dict[str, Any], field: str
) -> None:
    patient_id = new_patient()
    response = await api.http.put(f"/v1/patients/{patient_id}", json=change)
    body = assert_problem(response, 422, "invalid-request")
    assert [e["field"] for e in body["errors"]] == [field]
    for value in ("555-0199", "nobody", "Olympus", "12345", "medicare_part_z"):
        assert value not in response.text
    assert api.store.identities.resolve(patient_id) is None or (
        api.store.patients.get(api.ref(patient_id)) is None
    )


async def test_a_start_request_can_carry_the_intake(api: ApiStack) -> None:
    patient_id = new_patient()
    body = {"template": "specialty_start", "patient_id": patient_id, "program": PROGRAM,
            "patient": FULL_REGISTRATION}  # fmt: skip
    started = await api.http.post("/v1/journeys", json=body)
    assert started.status_code == 201, started.text
    profile = (await api.http.get(f"/v1/patients/{patient_id}")).json()
    assert started.json()["journey_id"] == f"journey/{PROGRAM}/{profile['patient_ref']}"
    assert profile["on_file"][:2] == ["phone", "email"] and profile["prescriber"] is True
    again = await api.http.post("/v1/journeys", json=body)
    assert again.status_code == 200
    timeline = (await api.http.get(f"/v1/patients/{patient_id}/timeline")).json()["entries"]
    assert [e["type"] for e in timeline].count("patient.registered") == 1


async def test_retried_writes_change_once_and_note_once(api: ApiStack) -> None:
    p = await patient(api)
    base = f"/v1/patients/{p.id}"
    grants = [await api.http.post(f"{base}/consents", json=grant()) for _ in range(5)]
    assert [r.status_code for r in grants] == [201, 200, 200, 200, 200]
    prefs = {"channel_ranking": ["sms"], "language": "es"}
    for _ in range(5):
        assert (await api.http.put(f"{base}/preferences", json=prefs)).status_code == 200
    revokes = [
        (await api.http.post(f"{base}/consents/revoke", json={"reason": "patient_request"})).json()
        for _ in range(5)
    ]
    assert [r["revoked"] for r in revokes] == [1, 0, 0, 0, 0]

    consents = (await api.http.get(f"{base}/consents")).json()["history"]
    assert len(consents) == 1
    versions = (await api.http.get(f"{base}/preferences")).json()["history"]
    assert len(versions) == 1
    kinds = [e["type"] for e in (await api.http.get(f"{base}/timeline")).json()["entries"]]
    assert kinds == ["patient.registered", "consent.changed", "preferences.changed",
                     "consent.changed"]  # fmt: skip
