"""`starter.py contacts PATIENT`: every contact decision for a patient and why (sent,
deferred until, suppressed because, failed with the gateway's code), across journeys.

Reads the store; `--json` for machines. No addresses and no message text are printed.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.timeline import DatabaseOption, PatientArg, RefOption, open_store, patient_ref_of
from services.consents import ConsentService


def contacts(
    patient: PatientArg,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")] = False,
    database_url: DatabaseOption = "",
    is_ref: RefOption = False,
) -> None:
    """Every contact decision for a patient and its reason, oldest first."""
    store = open_store(database_url)
    patient_ref = patient_ref_of(store, patient, is_ref)
    try:
        found = asyncio.run(ConsentService(store).contacts(patient_ref))
    finally:
        store.close()
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    console = Console() if Console().is_terminal else Console(width=160)
    title = f"Contacts of {patient_ref}" + (" (opted out)" if found.opted_out else "")
    if not found.contacts:
        typer.echo(f"no contact decisions for {patient_ref}")
        return
    table = Table(title=title)
    for column in ("decided (UTC)", "journey", "step", "content", "purpose", "decision",
                   "history"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for c in found.contacts:
        table.add_row(
            f"{c.decided_at:%Y-%m-%d %H:%M:%S}", (c.journey_id or "-").removeprefix("journey/"),
            c.step_id or "-", c.content or "-", c.purpose, c.decision, " → ".join(c.history),
        )  # fmt: skip
    console.print(table)
