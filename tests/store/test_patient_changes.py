"""Audited patient changes: the change and its timeline note in one transaction, both or
neither; a retry (or ten concurrent callers) writes the change and the note once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time
from typing import Any

import pytest
from sqlalchemy import Engine

from store import Store
from store.consents import Consent, ConsentGrant, Preference, PreferenceChange
from store.patient_changes import PatientChanges, PatientRegistration
from store.patients import (
    Coverage,
    CoverageDetails,
    Patient,
    PatientDetails,
    PatientErased,
    Prescriber,
    PrescriberDetails,
)
from store.timeline import TimelineEntry, TimelineEvent, TimelineRepository
from tests.store.conftest import count, together

REF = "pt-cora"
PHONE = "+15555550142"
ACTOR = "3f9a1c0b7d2e"


def _grant(**overrides: Any) -> ConsentGrant:
    fields: dict[str, Any] = {
        "channel": "sms",
        "address": PHONE,
        "purpose": "treatment",
        "program": "demo-program",
        "method": "enrollment_form",
    }
    return ConsentGrant.model_validate({**fields, **overrides})


def _registration() -> PatientRegistration:
    return PatientRegistration(
        details=PatientDetails(given_name="Cora", phone=PHONE, timezone="America/Chicago"),
        coverages=[
            CoverageDetails(payer_name="Acme Health", plan_type="commercial", member_id="M1"),
            CoverageDetails(payer_name="Second Payer", member_id="S2"),
        ],
        prescriber=PrescriberDetails(npi="1234567893", name="Dr Quinn"),
    )


def _notes(store: Store, ref: str = REF) -> list[TimelineEntry]:
    return store.timeline.for_patient(ref)


@pytest.fixture
def patient(store: Store) -> str:
    store.patients.upsert(REF, PatientDetails(phone=PHONE, email="cora@example.com"))
    return REF


# -- consents ------------------------------------------------------------------------------


def test_a_grant_and_its_note_then_the_same_grant_again_writes_nothing(
    store: Store, patient: str
) -> None:
    row, created = store.changes.grant_consent(patient, _grant(), ACTOR)
    assert created and row.id is not None and row.address == PHONE
    (note,) = _notes(store)
    assert note.type == "consent.changed"
    assert note.summary == "consent granted sms/treatment/demo-program via enrollment_form"
    assert note.correlation == {"consent_id": row.id, "api_key": ACTOR}
    assert note.idempotency_key == f"consent/{row.id}/granted"
    assert PHONE not in note.summary

    again, created = store.changes.grant_consent(patient, _grant(), ACTOR)
    assert not created and again.id == row.id
    assert len(_notes(store)) == 1 and len(store.consents.history(patient)) == 1


def test_a_refusal_is_noted_as_refused_and_not_repeated(store: Store, patient: str) -> None:
    row, created = store.changes.grant_consent(patient, _grant(status="rejected"), ACTOR)
    assert created and row.status == "rejected"
    assert _notes(store)[-1].summary.startswith("consent refused sms/treatment/demo-program")
    again, created = store.changes.grant_consent(patient, _grant(status="rejected"), ACTOR)
    assert not created and again.id == row.id
    # A consent after the refusal, then the refusal again: that one is a new record.
    store.changes.grant_consent(patient, _grant(), ACTOR)
    _, created = store.changes.grant_consent(patient, _grant(status="rejected"), ACTOR)
    assert created
    assert len(store.consents.history(patient)) == 3 and len(_notes(store)) == 3


def test_revoking_notes_the_ids_and_a_retry_revokes_nothing(store: Store, patient: str) -> None:
    sms, _ = store.changes.grant_consent(patient, _grant(), ACTOR)
    email, _ = store.changes.grant_consent(
        patient, _grant(channel="email", address="cora@example.com"), ACTOR
    )
    adherence, _ = store.changes.grant_consent(patient, _grant(purpose="adherence"), ACTOR)
    ids = store.changes.revoke_consents(patient, "patient_request", "sms", actor=ACTOR)
    assert ids == sorted([sms.id, adherence.id])  # type: ignore[type-var]
    note = _notes(store)[-1]
    assert note.summary == "consent revoked sms/*/*: patient_request"
    assert note.correlation == {"consent_ids": ids, "api_key": ACTOR}
    assert note.idempotency_key == f"consent-revoke/{ids[0]},{ids[1]}"
    assert [c.id for c in store.consents.in_force(patient)] == [email.id]

    assert store.changes.revoke_consents(patient, "patient_request", "sms", actor=ACTOR) == []
    assert len(_notes(store)) == 4
    assert store.changes.revoke_consents(patient, "erasure_request", actor=ACTOR) == [email.id]
    assert store.consents.in_force(patient) == []


# -- preferences ---------------------------------------------------------------------------


def test_a_preference_change_makes_a_version_and_a_note_unless_nothing_changes(
    store: Store, patient: str
) -> None:
    change = PreferenceChange(
        channel_ranking=["sms", "email"], quiet_hours_start=time(21), quiet_hours_end=time(7)
    )
    row, created = store.changes.change_preferences(patient, change, "api", ACTOR)
    assert created and row.source == "api" and row.quiet_hours_start == time(21)
    (note,) = _notes(store)
    assert note.type == "preferences.changed" and note.summary == f"preferences v{row.id}"
    assert note.correlation == {"preference_version": row.id, "api_key": ACTOR}

    # The same settings again, or with only another reason or source: nothing new.
    for same in (change, PreferenceChange(channel_ranking=["sms", "email"], reason="again")):
        current, created = store.changes.change_preferences(patient, same, "portal", ACTOR)
        assert not created and current.id == row.id
    assert len(store.preferences.history(patient)) == 1 and len(_notes(store)) == 1

    stop = PreferenceChange(do_not_contact=True, reason="patient_request")
    row2, created = store.changes.change_preferences(patient, stop, "api", ACTOR)
    assert created and row2.do_not_contact and row2.channel_ranking == ["sms", "email"]
    assert _notes(store)[-1].summary == f"preferences v{row2.id} do_not_contact patient_request"


# -- registration --------------------------------------------------------------------------


def test_registering_then_updating_notes_field_names_never_values(store: Store) -> None:
    first = store.changes.register_patient(REF, _registration(), ACTOR)
    assert first.created and first.patient.phone == PHONE
    assert first.changed == [
        "given_name", "phone", "timezone",
        "coverage[1].payer_name", "coverage[1].plan_type", "coverage[1].member_id",
        "coverage[2].payer_name", "coverage[2].member_id",
        "prescriber.npi", "prescriber.name",
    ]  # fmt: skip
    (note,) = _notes(store)
    assert note.type == "patient.registered"
    assert note.correlation == {"fields": first.changed, "api_key": ACTOR}
    assert note.summary.startswith("patient registered: given_name, phone, timezone")

    update = PatientRegistration(
        details=PatientDetails(phone="+15555550199", timezone="America/Denver", given_name="Cora"),
        coverages=[CoverageDetails(payer_name="Acme Health", plan_type="medicaid", member_id="M1")],
        prescriber=PrescriberDetails(npi="1999999992", name="Dr Quinn"),
    )
    second = store.changes.register_patient(REF, update, ACTOR)
    assert not second.created
    assert second.changed == [
        "phone", "timezone", "coverage[1].plan_type", "coverage[2]", "prescriber.npi",
    ]  # fmt: skip
    note = _notes(store)[-1]
    assert note.type == "patient.updated"
    assert note.summary == (
        "patient updated: phone, timezone, coverage[1].plan_type, coverage[2], prescriber.npi"
    )
    assert note.idempotency_key == f"patient/{REF}/updated/1"
    for entry in _notes(store):
        text = entry.summary + repr(entry.correlation)
        for value in ("Cora", PHONE, "+15555550199", "America", "Acme", "M1", "1234567893",
                      "1999999992", "Quinn", "medicaid", "commercial"):  # fmt: skip
            assert value not in text

    profile = store.patients.profile(REF)
    assert profile is not None and profile.patient.phone == "+15555550199"
    assert [(c.rank, c.plan_type) for c in profile.coverages] == [(1, "medicaid")]
    assert profile.prescriber is not None and profile.prescriber.npi == "1999999992"


def test_registration_writes_only_what_is_given(store: Store) -> None:
    store.changes.register_patient(REF, _registration(), ACTOR)
    result = store.changes.register_patient(
        REF, PatientRegistration(details=PatientDetails(birth_date=date(1970, 1, 2))), ACTOR
    )
    assert result.changed == ["birth_date"]
    profile = store.patients.profile(REF)
    assert profile is not None and profile.patient.phone == PHONE  # not given: kept
    assert len(profile.coverages) == 2 and profile.prescriber is not None
    nothing = store.changes.register_patient(REF, PatientRegistration(), ACTOR)
    assert (nothing.created, nothing.changed) == (False, [])
    assert len(_notes(store)) == 2
    empty = store.changes.register_patient("pt-empty", PatientRegistration(), ACTOR)
    assert empty.created and empty.changed == []
    assert [e.summary for e in _notes(store, "pt-empty")] == ["patient registered"]


def test_forgotten_and_unknown_patients_refuse_changes(store: Store, patient: str) -> None:
    store.forget(patient)
    with pytest.raises(PatientErased):
        store.changes.register_patient(patient, _registration(), ACTOR)
    with pytest.raises(PatientErased):
        store.changes.grant_consent(patient, _grant(), ACTOR)
    with pytest.raises(PatientErased):
        store.changes.revoke_consents(patient, "patient_request", actor=ACTOR)
    with pytest.raises(PatientErased):
        store.changes.change_preferences(patient, PreferenceChange(language="es"), "api", ACTOR)
    with pytest.raises(LookupError):
        store.changes.grant_consent("pt-nobody", _grant(), ACTOR)
    with pytest.raises(LookupError):
        store.changes.change_preferences("pt-nobody", PreferenceChange(), "api", ACTOR)
    with pytest.raises(ValueError):
        store.changes.register_patient("555-12-3456", PatientRegistration(), ACTOR)
    assert [e.type for e in _notes(store)] == ["patient.erased"]


# -- atomic, idempotent, concurrent --------------------------------------------------------

Operation = Callable[[PatientChanges], object]

OPERATIONS: dict[str, Operation] = {
    "grant": lambda c: c.grant_consent(REF, _grant(), ACTOR),
    "revoke": lambda c: c.revoke_consents(REF, "patient_request", "sms", actor=ACTOR),
    "preferences": lambda c: c.change_preferences(
        REF, PreferenceChange(channel_ranking=["email"], do_not_contact=True), "api", ACTOR
    ),
    "register": lambda c: c.register_patient(REF, _registration(), ACTOR),
    "update": lambda c: c.register_patient(
        REF, PatientRegistration(details=PatientDetails(timezone="America/Denver")), ACTOR
    ),
}


def _prepare(store: Store, name: str) -> None:
    if name != "register":
        store.patients.upsert(REF, PatientDetails(phone=PHONE))
    if name == "revoke":
        store.consents.grant(REF, _grant())  # without a note: the repository alone


ONCE = {"register": 1 + 2 + 1}  # what _written counts for one change: patient, coverages...


def _written(engine: Engine, name: str) -> int:
    """How many times the operation's change is in the database."""
    if name == "grant":
        return count(engine, Consent)
    if name == "revoke":
        return count(engine, Consent, status="inactive")
    if name == "preferences":
        return count(engine, Preference)
    if name == "register":
        return count(engine, Patient) + count(engine, Coverage) + count(engine, Prescriber)
    return count(engine, Patient, timezone="America/Denver")


@pytest.mark.parametrize("name", OPERATIONS)
def test_when_the_note_fails_the_change_is_not_written_either(
    store: Store, engine: Engine, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _prepare(store, name)

    def fail(self: TimelineRepository, entry: TimelineEvent, **kw: object) -> bool:
        raise RuntimeError("timeline unavailable")

    monkeypatch.setattr(TimelineRepository, "record", fail)
    with pytest.raises(RuntimeError, match="timeline unavailable"):
        OPERATIONS[name](store.changes)
    monkeypatch.undo()
    assert _written(engine, name) == 0
    assert count(engine, TimelineEntry) == 0
    OPERATIONS[name](store.changes)  # and it works once the timeline does
    assert count(engine, TimelineEntry) == 1


def test_a_taken_note_key_rolls_the_change_back(store: Store, engine: Engine) -> None:
    store.patients.upsert(REF)
    store.timeline.record(
        TimelineEvent(
            idempotency_key=f"patient/{REF}/updated/1", patient_ref=REF, type="operator.action"
        )
    )
    with pytest.raises(RuntimeError, match="timeline key already used"):
        OPERATIONS["update"](store.changes)
    assert _written(engine, "update") == 0 and count(engine, TimelineEntry) == 1


@pytest.mark.parametrize("name", OPERATIONS)
def test_five_retries_make_one_change_and_one_note(store: Store, engine: Engine, name: str) -> None:
    _prepare(store, name)
    for _ in range(5):
        OPERATIONS[name](store.changes)
    assert _written(engine, name) == ONCE.get(name, 1)
    assert count(engine, TimelineEntry) == 1


@pytest.mark.parametrize("name", OPERATIONS)
def test_ten_concurrent_callers_make_one_change_and_one_note(
    store: Store, engine: Engine, database_url: str, name: str
) -> None:
    _prepare(store, name)
    results = together(database_url, 10, lambda e: OPERATIONS[name](PatientChanges(e)))
    assert len(results) == 10
    assert _written(engine, name) == ONCE.get(name, 1)
    assert count(engine, TimelineEntry) == 1


def test_ten_concurrent_grants_agree_on_the_one_consent(
    store: Store, engine: Engine, database_url: str, patient: str
) -> None:
    results = together(database_url, 10, lambda e: PatientChanges(e).grant_consent(
        patient, _grant(), ACTOR
    ))  # fmt: skip
    assert [created for _, created in results].count(True) == 1
    assert len({row.id for row, _ in results}) == 1
    assert count(engine, Consent) == 1 and count(engine, TimelineEntry) == 1
