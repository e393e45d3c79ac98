"""Consents, preferences and opt-outs as checked at send time; history is never overwritten."""

from __future__ import annotations

from datetime import time, timedelta

from store import Store
from store.consents import ConsentGrant, PreferenceChange
from store.patients import PatientDetails
from store.types import utcnow

PHONE = "+15555550123"
PROGRAM = "prog-a"


def _patient(store: Store, ref: str = "pt-carla") -> str:
    store.patients.upsert(ref, PatientDetails(phone=PHONE, email=f"{ref}@example.com"))
    return ref


def _grant(**overrides: object) -> ConsentGrant:
    fields: dict[str, object] = {
        "channel": "sms",
        "address": PHONE,
        "purpose": "treatment",
        "program": PROGRAM,
        "method": "electronic_signature",
        "evidence_ref": "econsent-1",
    }
    return ConsentGrant.model_validate({**fields, **overrides})


def test_decide_needs_contact_details_and_consent(store: Store) -> None:
    decide = store.directory.decide
    assert decide("pt-unknown", "sms", "treatment", PROGRAM).reason == "no_contact"
    ref = _patient(store)
    assert decide(ref, "sms", "treatment", PROGRAM).reason == "no_consent"
    consent = store.consents.grant(ref, _grant(detail_allowed=True))
    ok = decide(ref, "sms", "treatment", PROGRAM)
    assert (ok.address, ok.reason, ok.consent_id, ok.detail_allowed) == (
        PHONE,
        None,
        consent.id,
        True,
    )
    # Consent is per purpose, program and channel.
    assert decide(ref, "sms", "adherence", PROGRAM).reason == "no_consent"
    assert decide(ref, "sms", "treatment", "prog-b").reason == "no_consent"
    assert decide(ref, "email", "treatment", PROGRAM).reason == "no_consent"


def test_consent_is_for_the_address_it_was_given_for(store: Store) -> None:
    ref = _patient(store)
    store.directory.grant_consent(ref, "sms", "treatment", PROGRAM)
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).address == PHONE
    store.patients.upsert(ref, PatientDetails(phone="+15555550124"))  # new number
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason == "no_consent"


def test_expiry_future_grants_and_refusals(store: Store) -> None:
    ref = _patient(store)
    now = utcnow()
    store.consents.grant(ref, _grant(expires_at=now - timedelta(seconds=1)))
    store.consents.grant(ref, _grant(granted_at=now + timedelta(days=1), evidence_ref="later"))
    store.consents.grant(ref, _grant(status="rejected", evidence_ref="no"))
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason == "no_consent"
    # ...in force tomorrow, as the future grant says.
    tomorrow = store.directory.decide(ref, "sms", "treatment", PROGRAM, at=now + timedelta(days=2))
    assert tomorrow.reason is None
    assert store.consents.in_force(ref) == []
    assert len(store.consents.history(ref)) == 3


def test_revocation_keeps_history_and_regrant_is_a_new_record(store: Store) -> None:
    ref = _patient(store)
    first = store.consents.grant(ref, _grant())
    assert store.consents.grant(ref, _grant()).id == first.id  # idempotent
    assert store.consents.revoke(ref, channel="sms", reason="sms_stop") == 1
    assert store.consents.revoke(ref, channel="sms", reason="sms_stop") == 0
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason == "no_consent"
    second = store.consents.grant(ref, _grant(evidence_ref="econsent-2"))
    assert second.id != first.id
    history = store.consents.history(ref)
    assert [(c.id, c.status, c.revoked_reason) for c in history] == [
        (first.id, "inactive", "sms_stop"),
        (second.id, "active", None),
    ]
    assert history[0].granted_at == first.granted_at and history[0].revoked_at is not None
    assert [c.id for c in store.consents.in_force(ref, channel="sms")] == [second.id]


def test_marketing_needs_written_consent(store: Store) -> None:
    ref = _patient(store)
    store.consents.grant(ref, _grant(purpose="marketing", method="verbal"))
    assert store.directory.decide(ref, "sms", "marketing", PROGRAM).reason == "no_consent"
    store.consents.grant(ref, _grant(purpose="marketing", method="written", evidence_ref="f-9"))
    assert store.directory.decide(ref, "sms", "marketing", PROGRAM).reason is None


def test_opt_out_suppresses_every_program_until_opt_in(store: Store) -> None:
    ref = _patient(store)
    store.consents.grant(ref, _grant())
    store.consents.grant(ref, _grant(channel="email", address=f"{ref}@example.com"))
    assert store.directory.opt_out(ref) is True
    assert store.directory.opt_out(ref) is False  # already opted out
    for channel in ("sms", "email"):
        assert store.directory.decide(ref, channel, "treatment", PROGRAM).reason == "opted_out"
    assert store.directory.opt_in(ref) == 1
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason is None
    history = store.preferences.opt_outs(ref)
    assert len(history) == 1 and history[0].cleared_at is not None


def test_preferences_are_versions_and_do_not_contact_suppresses(store: Store) -> None:
    ref = _patient(store)
    store.consents.grant(ref, _grant())
    store.preferences.change(
        ref,
        PreferenceChange(channel_ranking=["sms", "email"], quiet_hours_start=time(9, 0)),
    )
    store.preferences.change(ref, PreferenceChange(language="es"), source="patient_portal")
    current = store.preferences.current(ref)
    assert current is not None
    assert (current.channel_ranking, current.quiet_hours_start, current.language) == (
        ["sms", "email"],
        time(9, 0),
        "es",
    )
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).language == "es"
    store.preferences.change(ref, PreferenceChange(do_not_contact=True, reason="patient_request"))
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason == "do_not_contact"
    history = store.preferences.history(ref)
    assert [p.do_not_contact for p in history] == [False, False, True]
    assert history[0].language is None and history[1].source == "patient_portal"


def test_caregiver_consent_is_separate(store: Store) -> None:
    ref = _patient(store)
    store.patients.upsert(ref, PatientDetails(caregiver_phone="+15555550777"))
    store.consents.grant(ref, _grant(person="caregiver", address="+15555550777"))
    assert store.directory.decide(ref, "sms", "treatment", PROGRAM).reason == "no_consent"
    caregiver = store.directory.decide(ref, "sms", "treatment", PROGRAM, person="caregiver")
    assert caregiver.address == "+15555550777"
