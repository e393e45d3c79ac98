"""`starter.py patients ...`: the patient record as operators see it (no contact details
printed), and the right to erasure.

    starter.py patients register PATIENT --file patient.json   # as PUT /v1/patients/{id}
    starter.py patients show PATIENT
    starter.py patients forget PATIENT --yes

PATIENT is your own id for the patient (MRN, hub case id), or with --ref the pseudonym.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cli.timeline import DatabaseOption, PatientArg, RefOption, open_store, patient_ref_of
from contract.patients import PatientIn
from services.errors import InvalidField
from services.patients import PatientService

app = typer.Typer(help="Patient records: show (without PHI), forget.", no_args_is_help=True)


@app.command()
def register(
    patient: Annotated[str, typer.Argument(help="Your id for the patient (MRN, case id...).")],
    file: Annotated[
        Path, typer.Option("--file", help="JSON: the registration, as PUT /v1/patients/{id}.")
    ],
    database_url: DatabaseOption = "",
) -> None:
    """Register or update a patient from a JSON file; prints the pseudonym and what changed
    (field names only)."""
    try:
        registration = PatientIn.model_validate_json(file.read_bytes())
    except (OSError, ValidationError) as err:
        fields = [".".join(map(str, e["loc"])) for e in err.errors()] if isinstance(
            err, ValidationError) else []  # fmt: skip
        typer.echo(f"error: {file} is not a valid registration {fields or ''}".rstrip(), err=True)
        raise typer.Exit(2) from None
    store = open_store(database_url)
    try:
        patient_ref, registered = asyncio.run(
            PatientService(store).register(patient, registration, "cli")
        )
    except InvalidField as bad:
        typer.echo(f"error: {bad.field}: {bad.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()
    how = "registered" if registered.created else "updated"
    typer.echo(f"{how} {patient_ref}; changed: {', '.join(registered.changed) or 'nothing'}")


@app.command()
def show(patient: PatientArg, database_url: DatabaseOption = "", is_ref: RefOption = False) -> None:
    """What the store holds about a patient, without printing personal data."""
    store = open_store(database_url)
    patient = patient_ref_of(store, patient, is_ref)
    try:
        record = store.patients.profile(patient)
        if record is None:
            typer.echo(f"error: unknown patient {patient}", err=True)
            raise typer.Exit(2)
        p = record.patient
        on_file = [
            name
            for name in ("phone", "email", "address_line1", "birth_date", "caregiver_phone")
            if getattr(p, name) is not None
        ]
        consents = store.consents.in_force(patient)
        preference = store.preferences.current(patient)
        lines = [
            f"patient      {patient}",
            f"status       {'forgotten at ' + str(p.forgotten_at) if p.forgotten_at else 'active'}",
            f"on file      {', '.join(on_file) or '-'}",
            f"time zone    {p.timezone or '-'}   language {p.language}",
            f"coverages    {len(record.coverages)}",
            f"prescriber   {'yes' if record.prescriber else 'no'}",
            f"opted out    {'yes' if store.preferences.opted_out(patient) else 'no'}",
            f"do not contact {'yes' if preference and preference.do_not_contact else 'no'}",
            "consents in force:",
            *[
                f"  {c.person}/{c.channel}/{c.purpose}/{c.program} via {c.method}"
                + (f" until {c.expires_at:%Y-%m-%d}" if c.expires_at else "")
                for c in consents
            ],
            "timeline:    "
            + (
                ", ".join(f"{t} {n}" for t, n in sorted(store.timeline.counts(patient).items()))
                or "-"
            ),
        ]
        typer.echo("\n".join(lines))
    finally:
        store.close()


@app.command()
def forget(
    patient: PatientArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseOption = "",
    is_ref: RefOption = False,
) -> None:
    """Erase a patient's personal data (right to erasure), keeping the de-identified
    timeline (entries per type and time) and the consent and contact decisions."""
    if not yes:
        typer.confirm(
            "Erase every personal detail of this patient? This cannot be undone", abort=True
        )
    store = open_store(database_url)
    patient = patient_ref_of(store, patient, is_ref)
    try:
        report = store.forget(patient)
    finally:
        store.close()
    if report.already_forgotten:
        typer.echo(f"{patient} was already forgotten ({report.forgotten_at:%Y-%m-%d %H:%M:%S} UTC)")
    else:
        typer.echo(f"forgot {patient} at {report.forgotten_at:%Y-%m-%d %H:%M:%S} UTC")
    if report.erased:
        typer.echo("erased: " + ", ".join(f"{t} {n}" for t, n in sorted(report.erased.items())))
    kept = ", ".join(f"{t} {n}" for t, n in sorted(report.timeline_counts.items()))
    typer.echo(f"kept timeline: {kept or '-'}")
