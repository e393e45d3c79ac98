"""`starter.py timeline PATIENT`: what happened to a patient, in order, across journeys.

Reads the store (DATABASE_URL, default the local SQLite file); `--json` for machines.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from settings import get_settings
from store import Store
from store.erasure import forgotten

DatabaseOption = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help="Store URL (default: the local SQLite file under PITWALL_DATA_DIR).",
    ),
]


PatientArg = Annotated[
    str, typer.Argument(help="Your id for the patient (or, with --ref, Pitwall's pseudonym).")
]
RefOption = Annotated[
    bool, typer.Option("--ref", help="PATIENT is Pitwall's pseudonym (as the Temporal UI shows).")
]


def open_store(database_url: str) -> Store:
    settings = get_settings()
    return Store.open(
        database_url or settings.stack.database(),
        patient_id_key=settings.auth.patient_id_key.get_secret_value().encode(),
    )


def patient_ref_of(store: Store, patient: str, is_ref: bool) -> str:
    """The pseudonym for an operator's argument; exits with a clear line if unknown."""
    patient_ref = patient if is_ref else store.identities.resolve(patient)
    if patient_ref is None:
        store.close()
        typer.echo("error: no patient with that id (a pseudonym? add --ref)", err=True)
        raise typer.Exit(2)
    return patient_ref


def timeline(
    patient: PatientArg,
    journey: Annotated[
        str | None, typer.Option("--journey", help="Only this journey (workflow id).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for machines.")] = False,
    database_url: DatabaseOption = "",
    is_ref: RefOption = False,
) -> None:
    """Print a patient's timeline in order (milestones, partners, messages, tasks)."""
    store = open_store(database_url)
    patient = patient_ref_of(store, patient, is_ref)
    try:
        entries = store.timeline.for_patient(patient, journey_ref=journey)
        erased_at = forgotten(store.engine, patient)
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "occurred_at": e.occurred_at.isoformat(),
                        "journey": e.journey_ref,
                        "type": e.type,
                        "summary": e.summary,
                        "correlation": e.correlation,
                        "redacted": e.redacted,
                        "idempotency_key": e.idempotency_key,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped: no terminal width to fit, keep rows on one line
    if not entries:
        typer.echo(f"no timeline entries for {patient}" + (f" in {journey}" if journey else ""))
        return
    table = Table(title=f"Timeline of {patient}" + (f" — {journey}" if journey else ""))
    table.add_column("#", justify="right", style="dim")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("journey", overflow="fold")  # program[/business key]
    table.add_column("type", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("correlation", overflow="fold")
    for n, e in enumerate(entries, 1):
        table.add_row(
            str(n),
            e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            _short(e.journey_ref, patient),
            e.type,
            "(erased)" if e.redacted and not e.summary else e.summary,
            " ".join(f"{k}={v}" for k, v in e.correlation.items()),
        )
    console.print(table)
    if erased_at is not None:
        console.print(f"personal data erased at {erased_at:%Y-%m-%d %H:%M:%S} UTC")


def _short(journey_ref: str | None, patient: str) -> str:
    """`journey/{program}/{patient}[/{key}]` → `{program}[/{key}]` (the patient is known)."""
    if not journey_ref:
        return ""
    parts = journey_ref.split("/")
    if len(parts) >= 3 and parts[0] == "journey" and parts[2] == patient:
        return "/".join([parts[1], *parts[3:]])
    return journey_ref
