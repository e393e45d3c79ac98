"""`starter.py timeline PATIENT` and `starter.py patients forget PATIENT --yes`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from starter import app
from store import Store
from store.ledger import ContactPlan, ContactStatus
from store.patients import PatientDetails
from store.timeline import TimelineEvent

runner = CliRunner()
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _seed(url: str) -> None:
    store = Store.open(url)
    store.patients.upsert("pt-fay", PatientDetails(given_name="Fayella", phone="+15555550161"))
    store.directory.grant_consent("pt-fay", "sms", "treatment", "prog")
    steps = [
        ("journey/prog/pt-fay", "partner.callback", "pa=approved", 2),
        ("journey/prog/pt-fay", "journey.started", "template=specialty_start v1", 0),
        ("journey/prog/pt-fay/second", "task.opened", "task=followup-1", 1),
    ]
    for n, (journey, type_, summary, minutes) in enumerate(steps):
        store.timeline.record(
            TimelineEvent(
                idempotency_key=f"k{n}",
                patient_ref="pt-fay",
                journey_ref=journey,
                type=type_,
                occurred_at=T0 + timedelta(minutes=minutes),
                summary=summary,
                correlation={"pa_number": "PA-77"} if type_ == "partner.callback" else {},
            )
        )
    store.close()


def test_timeline_table_and_json_in_order(sqlite_url: str) -> None:
    _seed(sqlite_url)
    env = {"DATABASE_URL": sqlite_url}
    table = runner.invoke(app, ["timeline", "pt-fay", "--ref"], env=env)
    assert table.exit_code == 0, table.output
    lines = [line for line in table.stdout.splitlines() if "2026-03-02" in line]
    assert [line.split("│")[4].strip() for line in lines] == [
        "journey.started",
        "task.opened",
        "partner.callback",
    ]
    assert "prog/second" in lines[1] and "pa_number=PA-77" in lines[2]

    only = ["--journey", "journey/prog/pt-fay", "--json"]
    as_json = runner.invoke(app, ["timeline", "pt-fay", "--ref", *only], env=env)
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [(r["type"], r["occurred_at"]) for r in rows] == [
        ("journey.started", "2026-03-02T15:00:00+00:00"),
        ("partner.callback", "2026-03-02T15:02:00+00:00"),
    ]

    empty = runner.invoke(app, ["timeline", "pt-nobody", "--ref"], env=env)
    assert empty.exit_code == 0 and "no timeline entries" in empty.stdout


def test_patients_forget_needs_yes_and_keeps_the_timeline(sqlite_url: str) -> None:
    _seed(sqlite_url)
    env = {"DATABASE_URL": sqlite_url}
    refused = runner.invoke(app, ["patients", "forget", "pt-fay", "--ref"], input="n\n", env=env)
    assert refused.exit_code == 1
    store = Store.open(sqlite_url)
    patient = store.patients.get("pt-fay")
    assert patient is not None and patient.given_name == "Fayella"

    done = runner.invoke(app, ["patients", "forget", "pt-fay", "--ref", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert "forgot pt-fay" in done.stdout
    assert "kept timeline: journey.started 1, partner.callback 1, patient.erased 1" in done.stdout
    patient = store.patients.get("pt-fay")
    assert patient is not None and patient.given_name is None and patient.phone is None
    again = runner.invoke(app, ["patients", "forget", "pt-fay", "--ref", "--yes"], env=env)
    assert "already forgotten" in again.stdout

    shown = runner.invoke(app, ["patients", "show", "pt-fay", "--ref"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "forgotten at" in shown.stdout and "Fayella" not in shown.stdout
    rows = json.loads(runner.invoke(app, ["timeline", "pt-fay", "--ref", "--json"], env=env).stdout)
    assert all(r["summary"] == "" for r in rows if r["type"] != "patient.erased")
    store.close()


def test_patients_show_prints_no_contact_details(sqlite_url: str) -> None:
    _seed(sqlite_url)
    shown = runner.invoke(
        app, ["patients", "show", "pt-fay", "--ref"], env={"DATABASE_URL": sqlite_url}
    )
    assert shown.exit_code == 0, shown.output
    assert "phone" in shown.stdout and "+15555550161" not in shown.stdout
    assert "patient/sms/treatment/prog" in shown.stdout
    unknown = runner.invoke(app, ["patients", "show", "pt-x"], env={"DATABASE_URL": sqlite_url})
    assert unknown.exit_code == 2


def test_operators_name_a_patient_by_the_callers_id(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    ref = store.identities.pseudonym("MRN-0001234")
    store.patients.upsert(ref, PatientDetails(phone="+15555550162"))
    store.timeline.record(
        TimelineEvent(idempotency_key="hub-1", patient_ref=ref, type="journey.started",
                      occurred_at=T0, summary="template=specialty_start v1")
    )  # fmt: skip
    store.close()
    env = {"DATABASE_URL": sqlite_url}
    found = runner.invoke(app, ["timeline", "MRN-0001234", "--json"], env=env)
    assert found.exit_code == 0, found.output
    assert [r["type"] for r in json.loads(found.stdout)] == ["journey.started"]
    shown = runner.invoke(app, ["patients", "show", "MRN-0001234"], env=env)
    assert shown.exit_code == 0 and ref in shown.stdout and "MRN" not in shown.stdout
    unknown = runner.invoke(app, ["timeline", "MRN-0009999"], env=env)
    assert unknown.exit_code == 2 and "MRN-0009999" not in unknown.output


def test_patients_register_from_a_file(sqlite_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": sqlite_url}
    Store.open(sqlite_url).close()
    file = tmp_path / "patient.json"
    file.write_text(json.dumps({"telecom": [{"system": "phone", "value": "+15555550163"}],
                                "timezone": "America/Chicago"}))  # fmt: skip
    register = ["patients", "register", "MRN-0004321", "--file", str(file)]
    made = runner.invoke(app, register, env=env)
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("registered pt-") and "phone" in made.stdout
    assert "5555550163" not in made.stdout and "MRN" not in made.stdout
    again = runner.invoke(
        app, ["patients", "register", "MRN-0004321", "--file", str(file)], env=env
    )
    assert again.exit_code == 0 and "changed: nothing" in again.stdout
    file.write_text(json.dumps({"timezone": "Mars/Olympus"}))
    bad = runner.invoke(app, register, env=env)
    assert bad.exit_code == 2 and "body.timezone" in bad.output and "Olympus" not in bad.output


def test_contacts_shows_each_decision_and_why(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    ref = store.identities.pseudonym("MRN-0005555")
    store.patients.upsert(ref, PatientDetails(phone="+15555550165"))
    outcomes: list[tuple[str, ContactStatus]] = [
        ("welcome", "sent"),
        ("refill_reminder", "suppressed"),
    ]
    for step, outcome in outcomes:
        key = f"journey/prog/{ref}/{step}/1"
        plan = ContactPlan(
            idempotency_key=key,
            patient_ref=ref,
            program="prog",
            step_id=step,
            channel="sms",
            purpose="treatment",
        )
        store.ledger.record(plan)
        reason = "opted_out" if outcome == "suppressed" else None
        store.ledger.transition(key, outcome, reason=reason, provider_message_id="SM1" + step)
    store.close()
    env = {"DATABASE_URL": sqlite_url}
    shown = runner.invoke(app, ["contacts", "MRN-0005555"], env=env)
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if "treatment" in line]
    assert len(rows) == 2 and "sent" in rows[0] and "opted_out" in rows[1]
    assert "5555550165" not in shown.stdout and "MRN" not in shown.stdout
    as_json = json.loads(runner.invoke(app, ["contacts", "MRN-0005555", "--json"], env=env).stdout)
    assert [(c["step_id"], c["status"], c["reason"]) for c in as_json["contacts"]] == [
        ("welcome", "sent", None), ("refill_reminder", "suppressed", "opted_out")
    ]  # fmt: skip
    assert as_json["contacts"][1]["history"] == ["planned", "suppressed: opted_out"]
