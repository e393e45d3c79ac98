"""The patient record: demographics, coverage and prescriber captured once, reused."""

from __future__ import annotations

from datetime import date

import pytest

from store import Store
from store.patients import CoverageDetails, PatientDetails, PatientErased, PrescriberDetails


def test_upsert_writes_only_the_fields_set(store: Store) -> None:
    store.patients.upsert(
        "pt-ana",
        PatientDetails(
            given_name="Ana",
            family_name="Silva",
            birth_date=date(1980, 5, 17),
            phone="+15555550111",
            timezone="America/Chicago",
        ),
    )
    store.patients.upsert("pt-ana", PatientDetails(email="ana@example.com"))
    patient = store.patients.get("pt-ana")
    assert patient is not None
    assert (patient.given_name, patient.phone, patient.email) == (
        "Ana",
        "+15555550111",
        "ana@example.com",
    )
    assert patient.birth_date == date(1980, 5, 17)
    assert patient.timezone == "America/Chicago"
    assert patient.created_at.tzinfo is not None and patient.updated_at >= patient.created_at


def test_patient_refs_must_be_pseudonymous(store: Store) -> None:
    for bad in ("5555550111", "pt-1980-05-17", "x"):
        with pytest.raises(ValueError):
            store.patients.upsert(bad, PatientDetails())
    assert store.patients.get("5555550111") is None


def test_profile_reuses_coverage_and_prescriber(store: Store) -> None:
    store.patients.upsert("pt-bo", PatientDetails(given_name="Bo"))
    store.patients.set_coverage(
        "pt-bo",
        CoverageDetails(payer_name="Acme Health", member_id="M123", rx_bin="610014", rx_pcn="X"),
    )
    store.patients.set_coverage("pt-bo", CoverageDetails(payer_name="Second", member_id="S9"), 2)
    store.patients.set_coverage(
        "pt-bo", CoverageDetails(payer_name="Acme Health", member_id="M124", rx_bin="610014")
    )
    store.patients.set_prescriber(
        "pt-bo", PrescriberDetails(npi="1234567893", name="Dr Who", fax="+15555550999")
    )
    profile = store.patients.profile("pt-bo")
    assert profile is not None
    assert [(c.rank, c.member_id) for c in profile.coverages] == [(1, "M124"), (2, "S9")]
    assert profile.primary_coverage is not None and profile.primary_coverage.member_id == "M124"
    assert profile.prescriber is not None and profile.prescriber.npi == "1234567893"
    assert store.patients.profile("pt-nobody") is None


def test_coverage_needs_a_patient(store: Store) -> None:
    with pytest.raises(LookupError):
        store.patients.set_coverage("pt-ghost", CoverageDetails(member_id="M1"))


def test_forgotten_patient_cannot_be_filled_again(store: Store) -> None:
    store.patients.upsert("pt-gone", PatientDetails(given_name="Gone"))
    store.forget("pt-gone")
    with pytest.raises(PatientErased):
        store.patients.upsert("pt-gone", PatientDetails(given_name="Back"))
    with pytest.raises(PatientErased):
        store.patients.set_prescriber("pt-gone", PrescriberDetails(name="Dr X"))
