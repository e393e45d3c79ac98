"""Right to erasure keeps the de-identified timeline; PHI never reaches logs or errors."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
import structlog
from sqlalchemy import Engine, Text, cast, select
from sqlalchemy.exc import IntegrityError
from structlog.testing import capture_logs

from domain.partners import PartnerEvent
from store import Store
from store.consents import ConsentGrant, PreferenceChange
from store.db import session
from store.ledger import ContactPlan
from store.models import Consent, Coverage, Patient, Prescriber, UnmatchedCallback, metadata
from store.patients import CoverageDetails, PatientDetails, PrescriberDetails
from store.timeline import TimelineEvent

REF = "pt-erin"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PHI = {
    "given_name": "Erinska",
    "family_name": "Quillfeather",
    "phone": "+15555550142",
    "email": "erinska.q@example.com",
    "address_line1": "17 Juniper Lane",
    "postal_code": "60614",
    "caregiver_name": "Bartholomew Quillfeather",
    "caregiver_phone": "+15555550143",
    "caregiver_email": "bart.q@example.com",
    "member_id": "MBR-99173",
    "prescriber": "Dr Zelda Marchbanks",
    "npi": "1928374650",
    "message_sid": "SM-ERIN-1",
    "rx": "RX-ERIN-7",
}


def _fill(store: Store) -> None:
    store.patients.upsert(
        REF,
        PatientDetails(
            given_name=PHI["given_name"],
            family_name=PHI["family_name"],
            birth_date=date(1971, 2, 3),
            phone=PHI["phone"],
            email=PHI["email"],
            address_line1=PHI["address_line1"],
            city="Chicago",
            region="IL",
            postal_code=PHI["postal_code"],
            timezone="America/Chicago",
            caregiver_name=PHI["caregiver_name"],
            caregiver_phone=PHI["caregiver_phone"],
            caregiver_email=PHI["caregiver_email"],
        ),
    )
    store.patients.set_coverage(REF, CoverageDetails(payer_name="Acme", member_id=PHI["member_id"]))
    store.patients.set_prescriber(REF, PrescriberDetails(npi=PHI["npi"], name=PHI["prescriber"]))
    for purpose in ("treatment", "adherence"):
        store.directory.grant_consent(REF, "sms", purpose, "prog", evidence_ref="form-1")
    store.consents.grant(
        REF,
        ConsentGrant(
            person="caregiver",
            channel="email",
            address=PHI["caregiver_email"],
            purpose="treatment",
            program="prog",
        ),
    )
    store.preferences.change(REF, PreferenceChange(channel_ranking=["sms"]))
    journey = f"journey/prog/{REF}"
    for i, type_ in enumerate(["partner.call", "partner.callback", "message.sent", "task.opened"]):
        store.timeline.record(
            TimelineEvent(
                idempotency_key=f"{journey}/{i}",
                patient_ref=REF,
                journey_ref=journey,
                type=type_,
                occurred_at=T0 + timedelta(minutes=i),
                summary=f"rx={PHI['rx']}",
                correlation={"rx_id": PHI["rx"]},
            )
        )
    store.ledger.record(
        ContactPlan(
            idempotency_key=f"{journey}/welcome/1",
            patient_ref=REF,
            journey_ref=journey,
            program="prog",
            channel="sms",
            purpose="treatment",
            status="sent",
            provider_message_id=PHI["message_sid"],
        )
    )
    store.callbacks.keep(
        "pharmacy",
        PartnerEvent(
            event_id="evt-1",
            type="pharmacy.shipped",
            correlation_key=PHI["rx"],
            journey_ref=journey,
            occurred_at=T0,
            data={"note": PHI["given_name"]},
        ),
        "journey_finished",
    )


def _all_text(engine: Engine) -> str:
    """Every value of every column of every table, as text."""
    chunks: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for column in table.columns:
                for (value,) in conn.execute(select(cast(column, Text))):
                    chunks.append(str(value))
    return "\n".join(chunks)


def _phi_in(text: str) -> list[str]:
    return [name for name, value in PHI.items() if value in text]


def test_forget_erases_personal_data_and_keeps_the_counts(store: Store, engine: Engine) -> None:
    _fill(store)
    other = "pt-other"
    store.patients.upsert(other, PatientDetails(given_name="Otto", phone="+15555550150"))
    assert set(_phi_in(_all_text(engine))) == set(PHI)  # it is all there
    counts_before = store.timeline.counts(REF)
    ledger_before = [(e.status, e.channel) for e in store.ledger.for_patient(REF)]

    report = store.forget(REF, at=T0 + timedelta(days=30))

    assert _phi_in(_all_text(engine)) == []
    # What remains: the tombstone, the timeline per type (+ the erasure itself), the
    # ledger's decisions, the consent history without addresses.
    tomb = store.patients.get(REF)
    assert tomb is not None and tomb.forgotten_at == T0 + timedelta(days=30)
    assert all(getattr(tomb, name) is None for name in Patient.__phi__)
    assert store.timeline.counts(REF) == {**counts_before, "patient.erased": 1}
    assert report.timeline_counts == store.timeline.counts(REF)
    entries = store.timeline.for_patient(REF)
    assert [e.occurred_at for e in entries][:4] == [T0 + timedelta(minutes=i) for i in range(4)]
    assert all(e.redacted and e.summary == "" and e.correlation == {} for e in entries[:4])
    assert [(e.status, e.channel) for e in store.ledger.for_patient(REF)] == ledger_before
    consents = store.consents.history(REF)
    assert len(consents) == 3 and all(c.address is None for c in consents)
    assert [c.purpose for c in consents] == ["treatment", "adherence", "treatment"]
    assert store.patients.coverages(REF) == [] and store.patients.prescriber(REF) is None
    assert store.directory.decide(REF, "sms", "treatment", "prog").reason == "erased"
    current = store.preferences.current(REF)
    assert current is not None and current.do_not_contact and current.reason == "erased"
    assert report.erased["patient"] == 1 and report.erased["timeline_entry"] == 4
    # Nobody else was touched.
    otto = store.patients.get(other)
    assert otto is not None and otto.phone == "+15555550150"


def test_forget_twice_changes_nothing(store: Store) -> None:
    _fill(store)
    store.forget(REF)
    again = store.forget(REF)
    assert again.already_forgotten and again.erased == {}
    assert again.timeline_counts["patient.erased"] == 1


def test_forget_an_unknown_patient_leaves_a_tombstone(store: Store) -> None:
    report = store.forget("pt-never-seen")
    assert not report.already_forgotten
    tomb = store.patients.get("pt-never-seen")
    assert tomb is not None and tomb.forgotten_at is not None


def test_no_phi_in_logs_even_with_sql_echo(
    store: Store, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.echo = True  # the worst case: someone turns on SQL logging
    try:
        with caplog.at_level(logging.DEBUG), capture_logs() as structured:
            _fill(store)
            store.directory.decide(REF, "sms", "treatment", "prog")
            store.forget(REF)
    finally:
        engine.echo = False
    assert "INSERT INTO patient" in caplog.text  # the statements were logged...
    assert _phi_in(caplog.text) == []  # ...their values were not
    assert _phi_in(repr(structured)) == []


def test_no_phi_in_database_errors_or_reprs(store: Store, engine: Engine) -> None:
    store.patients.upsert(REF, PatientDetails(given_name=PHI["given_name"], phone=PHI["phone"]))
    with pytest.raises(IntegrityError) as caught, session(engine) as s:
        s.add(Patient(patient_ref=REF, given_name=PHI["given_name"], phone=PHI["phone"]))
        s.commit()
    assert _phi_in(str(caught.value)) == []
    patient = store.patients.get(REF)
    assert _phi_in(repr(patient)) == [] and _phi_in(str(patient)) == []
    assert "patient_ref='pt-erin'" in repr(patient)
    log = structlog.get_logger("test")
    with capture_logs() as structured:
        log.info("oops", row=patient)  # an accidental log of a row
    assert _phi_in(repr(structured)) == []


def test_every_phi_name_is_a_column() -> None:
    # The erasure and the reprs work by name: a renamed column must not slip through.
    for table in (Patient, Coverage, Prescriber, Consent, UnmatchedCallback):
        assert table.__phi__ <= set(metadata.tables[str(table.__tablename__)].c.keys())
