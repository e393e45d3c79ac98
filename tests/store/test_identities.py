"""Patient identities: an external id maps to one random pseudonym, stored only as an HMAC."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, select

from domain.journey import check_pseudonym
from store import Store
from store.identities import PatientIdentities, PatientIdentity
from tests.store.conftest import count, together

KEY = b"test-patient-id-key"
PSEUDONYM = re.compile(r"^pt-[a-z2-7]{16}$")


def test_a_new_external_id_gets_a_random_pseudonym_once(engine: Engine) -> None:
    ids = PatientIdentities(engine, KEY)
    assert ids.resolve("MRN-0042") is None
    assert count(engine, PatientIdentity) == 0  # resolve never writes
    ref = ids.pseudonym("MRN-0042")
    assert PSEUDONYM.match(ref) and check_pseudonym(ref, "patient_ref") == ref
    assert ids.pseudonym("MRN-0042") == ref == ids.resolve("MRN-0042")
    assert ids.pseudonym("mrn-0042") != ref  # ids are taken as given
    assert count(engine, PatientIdentity) == 2


def test_the_external_id_is_not_stored_only_its_keyed_hash(engine: Engine) -> None:
    ids = PatientIdentities(engine, KEY)
    ref = ids.pseudonym("john-smith")
    with engine.connect() as conn:
        (row,) = conn.execute(select(PatientIdentity.__table__)).all()  # type: ignore[attr-defined]
    assert "john-smith" not in repr(tuple(row))
    assert re.fullmatch(r"[0-9a-f]{64}", row.id_hash) and row.patient_ref == ref
    assert "<redacted>" in repr(PatientIdentity(id_hash=row.id_hash, patient_ref=ref))
    # Another key finds nothing: the hash is keyed, not a plain digest of the id.
    assert PatientIdentities(engine, b"another-key").resolve("john-smith") is None


def test_the_store_uses_its_patient_id_key(engine: Engine) -> None:
    ref = Store(engine, patient_id_key=KEY).identities.pseudonym("HUB-77")
    assert PatientIdentities(engine, KEY).resolve("HUB-77") == ref
    assert Store(engine).identities.resolve("HUB-77") is None  # the development key differs
    with pytest.raises(ValueError):
        PatientIdentities(engine, b"")


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 129, "john smith", "tab\there", "new\nline", "nul\x00", "caf\u00e9", " MRN1"],
)
def test_bad_external_ids_are_refused_without_echoing_them(engine: Engine, bad: str) -> None:
    ids = PatientIdentities(engine, KEY)
    for call in (ids.pseudonym, ids.resolve):
        with pytest.raises(ValueError) as refused:
            call(bad)
        message = str(refused.value)
        assert "1-128 printable ASCII" in message
        assert not bad or bad not in message
        assert refused.value.__cause__ is None and refused.value.__context__ is None
    assert count(engine, PatientIdentity) == 0


def test_the_longest_and_oddest_valid_ids_are_accepted(engine: Engine) -> None:
    ids = PatientIdentities(engine, KEY)
    for good in ("x" * 128, "7", "MRN:00042/a~b!", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"):
        assert PSEUDONYM.match(ids.pseudonym(good))
    assert count(engine, PatientIdentity) == 4


def test_twenty_concurrent_first_uses_make_one_pseudonym(engine: Engine, database_url: str) -> None:
    refs = together(database_url, 20, lambda e: PatientIdentities(e, KEY).pseudonym("MRN-RACE"))
    assert len(set(refs)) == 1
    assert count(engine, PatientIdentity) == 1
    assert PatientIdentities(engine, KEY).resolve("MRN-RACE") == refs[0]


def test_erasure_unlinks_the_external_id(store: Store) -> None:
    ref = store.identities.pseudonym("MRN-FORGET")
    other = store.identities.pseudonym("MRN-KEEP")
    store.patients.upsert(ref)
    report = store.forget(ref)
    assert report.erased.get("patient_identity") == 1
    assert store.identities.resolve("MRN-FORGET") is None
    assert store.identities.resolve("MRN-KEEP") == other
    assert store.forget(ref).erased.get("patient_identity") is None  # idempotent
    # The id can come back, but only as a new patient: nothing links it to the old one.
    assert store.identities.pseudonym("MRN-FORGET") not in (ref, other)
