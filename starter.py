"""Pitwall client CLI: start, inspect and steer journeys; templates; configuration.

python starter.py --help
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from temporalio.service import RPCError

from cli.contacts import contacts as contacts_command
from cli.keys import app as keys_app
from cli.patients import app as patients_app
from cli.simulate import simulate as simulate_command
from cli.tasks import app as tasks_app
from cli.templates import app as templates_app
from cli.texts import text as text_command
from cli.timeline import open_store
from cli.timeline import timeline as timeline_command
from contract.journeys import StartJourney
from contract.patients import PatientIn
from domain.events import declared_event_types, did_you_mean
from domain.journey import JourneyState
from domain.partners import PartnerEvent
from domain.template_loader import (
    TemplateError,
    UnknownTemplate,
    get_template,
    load_template_versions,
)
from gateway.journeys import JourneyError, JourneyGateway, connect_temporal
from gateway.namespace import ensure_search_attributes
from gateway.visibility import JourneyFilter
from services.journeys import JourneyStarter
from services.patients import PatientService
from settings import Settings, get_settings

app = typer.Typer(help="Pitwall: start, inspect and steer therapy journeys.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")
app.add_typer(patients_app, name="patients")
app.add_typer(keys_app, name="keys")
app.add_typer(tasks_app, name="tasks")

T = TypeVar("T")


def _run(action: Callable[[JourneyGateway], Awaitable[T]]) -> T:
    """Connect, run, and turn every expected failure into one clear line."""
    settings = get_settings()

    async def go() -> T:
        temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
        return await action(JourneyGateway(temporal, settings.temporal.task_queue))

    try:
        return asyncio.run(go())
    except (JourneyError, UnknownTemplate, TemplateError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        typer.echo(f"error: invalid request: {problems}", err=True)
        raise typer.Exit(2) from None
    except RuntimeError as err:
        if "connect" in str(err).lower() or isinstance(err, RPCError):
            typer.echo(
                f"error: cannot reach Temporal at {settings.temporal.address} "
                "(is the stack running? `make run`)",
                err=True,
            )
            raise typer.Exit(3) from None
        raise


def _print_state(state: JourneyState) -> None:
    typer.echo(state.model_dump_json(indent=2))


@app.command()
def start(
    template: str = typer.Argument(..., help="Template id, e.g. specialty_start."),
    patient: str = typer.Option(..., help="Your id for the patient (MRN, case id...)."),
    program: str = typer.Option(..., help="Program id."),
    business_key: str | None = typer.Option(None, help="Second journey of one program."),
    version: int | None = typer.Option(None, help="Template version (default: latest)."),
    param: list[str] = typer.Option([], help="Template parameter override NAME=VALUE."),
    time_scale: float = typer.Option(1.0, help="Journey-seconds per real second."),
    intake: Path | None = typer.Option(
        None, help="JSON file: the patient's registration (as PUT /v1/patients/{id})."
    ),
) -> None:
    """Start a journey (or find the one that already exists), registering the intake."""
    params: dict[str, Any] = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"error: --param takes NAME=VALUE, got {item!r}", err=True)
            raise typer.Exit(2)
        params[name] = _scalar(value)

    request = StartJourney(
        template=template,
        template_version=version,
        patient_id=patient,
        program=program,
        business_key=business_key,
        params=params,
        time_scale=time_scale,
        patient=PatientIn.model_validate_json(intake.read_bytes()) if intake else None,
    )

    async def go(journeys: JourneyGateway) -> None:
        store = open_store("")
        try:
            starter = JourneyStarter(journeys, PatientService(store))
            ack = await starter.start(request, get_template(template, version=version), "cli")
        finally:
            store.close()
        typer.echo(("started " if ack.created else "already running ") + ack.journey_id)

    _run(go)


@app.command("journeys")
def list_journeys(
    patient: str = typer.Option(..., help="Your id for the patient (MRN, case id...)."),
    running: bool | None = typer.Option(None, help="Only running (or, --no-running, closed)."),
) -> None:
    """A patient's journeys, found by your own patient id."""
    store = open_store("")
    try:
        patient_ref = store.identities.resolve(patient)
    finally:
        store.close()
    if patient_ref is None:
        typer.echo("no such patient", err=True)
        raise typer.Exit(2)
    where = JourneyFilter(patient_ref=patient_ref, running=running)
    page = _run(lambda j: j.find(where, page_size=100))
    for item in page.items:
        typer.echo(f"{item.journey_id}  {item.execution_status}  {item.stage or '-'}")


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@app.command()
def status(journey_id: str) -> None:
    """Print a journey's state (stage, steps done, pending wait, tasks)."""
    _print_state(_run(lambda j: j.state(journey_id)))


@app.command()
def event(
    journey_id: str,
    type: str = typer.Option(..., "--type", help="Event type, e.g. task.completed."),
    key: str = typer.Option(..., help="Correlation key (task id, PA number, Rx id...)."),
    event_id: str | None = typer.Option(None, help="Event id (default: a new one)."),
    data: str = typer.Option("{}", help="Event data as JSON."),
) -> None:
    """Deliver an event to a journey (operators: complete a task, retry a step...)."""
    templates = load_template_versions().values()
    known = declared_event_types(e for t in templates for e in t.events)
    if type not in known:
        typer.echo(f"error: unknown event type{did_you_mean(type, known)}", err=True)
        raise typer.Exit(2)
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        typer.echo("error: --data must be JSON", err=True)
        raise typer.Exit(2) from None
    ev = PartnerEvent(
        event_id=event_id or f"op-{uuid.uuid4()}",
        type=type,
        correlation_key=key,
        journey_ref=journey_id,
        occurred_at=datetime.now(UTC),
        data=payload,
    )
    ack = _run(lambda j: j.send_event(journey_id, ev))
    typer.echo("accepted" if ack.accepted else "duplicate (already received)")


@app.command()
def pause(journey_id: str, reason: str = typer.Option("", help="Why (no patient data).")) -> None:
    """Pause a journey between steps."""
    typer.echo(f"{_run(lambda j: j.pause(journey_id, reason)).status}")


@app.command()
def resume(journey_id: str) -> None:
    """Resume a paused journey."""
    typer.echo(f"{_run(lambda j: j.resume(journey_id)).status}")


@app.command()
def cancel(journey_id: str, reason: str = typer.Option(..., help="Why (no patient data).")) -> None:
    """Cancel a journey."""
    _run(lambda j: j.cancel(journey_id, reason))
    typer.echo("cancelling")


@app.command("setup")
def setup_namespace() -> None:
    """Register Pitwall's search attributes in the namespace (run once per cluster)."""
    settings = get_settings()

    async def go() -> list[str]:
        temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
        return await ensure_search_attributes(temporal)

    try:
        added = asyncio.run(go())
    except RuntimeError as err:
        typer.echo(f"error: cannot reach Temporal at {settings.temporal.address}: {err}", err=True)
        raise typer.Exit(3) from None
    typer.echo(f"added: {', '.join(added)}" if added else "search attributes already in place")


@app.command()
def config() -> None:
    """Print the configuration table (Markdown) for the README."""
    typer.echo(config_table())


def config_table() -> str:
    rows = ["| variable | default | description |", "|---|---|---|"]
    for group in Settings.groups:
        prefix = group.model_config.get("env_prefix", "")
        for name, info in group.model_fields.items():
            alias = info.validation_alias if isinstance(info.validation_alias, str) else None
            env = alias or f"{prefix}{name}".upper()
            default = info.default
            shown = "(secret)" if "Secret" in type(default).__name__ else str(default)
            if "/" in shown and "://" not in shown:
                shown = shown.replace(str(get_settings().stack.data_dir.parent), ".")
            rows.append(f"| `{env}` | `{shown}` | {info.description or ''} |")
    return "\n".join(rows)


app.command("timeline")(timeline_command)
app.command("contacts")(contacts_command)
app.command("text")(text_command)
app.command("simulate")(simulate_command)


def main() -> None:
    code: int | str | None = 0
    try:
        app()
    except SystemExit as done:
        code = done.code
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the Temporal client's native threads can abort it.
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
