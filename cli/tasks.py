"""`starter.py tasks`: the hub's work queue without the Temporal UI.

    starter.py tasks list [--role R] [--status S] [--overdue]
    starter.py tasks show ID
    starter.py tasks assign ID OWNER
    starter.py tasks reassign ID [--owner O] [--role R]
    starter.py tasks complete ID [--outcome CODE]    (the journey waiting on it goes on)

Reads and writes the store; completing tells the task's journey through Temporal.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.timeline import DatabaseOption, open_store
from gateway.journeys import JourneyGateway, connect_temporal
from services.tasks import TaskNotFound, TaskService
from settings import get_settings
from store.tasks import TaskAction, TaskClosed

app = typer.Typer(help="The task queue: list, show, assign, reassign, complete.")
TaskIdArg = Annotated[int, typer.Argument(help="The task's id (`tasks list`).")]


@app.command("list")
def list_tasks(
    role: Annotated[str | None, typer.Option(help="Owner role, e.g. patient_navigator.")] = None,
    status: Annotated[str | None, typer.Option(help="requested, in-progress, ...")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open, past due.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for machines.")] = False,
    database_url: DatabaseOption = "",
) -> None:
    """Open and closed tasks across journeys, soonest due first."""
    store = open_store(database_url)
    try:
        found = asyncio.run(
            TaskService(store).find(role=role, status=status, overdue=overdue or None)
        ).items
    finally:
        store.close()
    if as_json:
        typer.echo("[" + ",".join(t.model_dump_json() for t in found) + "]")
        return
    if not found:
        typer.echo("no tasks")
        return
    table = Table(title="Tasks")
    for column in ("id", "kind", "title", "role", "owner", "status", "due (UTC)", "journey"):
        table.add_column(column, overflow="fold")
    for t in found:
        due = f"{t.due_at:%Y-%m-%d %H:%M}" + (" OVERDUE" if t.overdue else "")
        table.add_row(str(t.id), t.kind, t.title, t.owner_role, t.owner or "-", t.status, due,
                      (t.journey_id or "-").removeprefix("journey/"))  # fmt: skip
    (Console() if Console().is_terminal else Console(width=160)).print(table)


@app.command("show")
def show(task_id: TaskIdArg, database_url: DatabaseOption = "") -> None:
    """One task with its trail (never the patient's own words: read those in the API)."""
    store = open_store(database_url)
    try:
        detail = asyncio.run(TaskService(store).get(task_id, with_note=False))
    except TaskNotFound:
        raise typer.BadParameter("no task with that id", param_hint="ID") from None
    finally:
        store.close()
    typer.echo(detail.model_dump_json(indent=2, exclude={"note"}))


def _act(task_id: int, action: TaskAction, database_url: str) -> None:
    async def go() -> str:
        settings = get_settings()
        temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
        store = open_store(database_url)
        try:
            service = TaskService(store, JourneyGateway(temporal, settings.temporal.task_queue))
            done = await service.act(task_id, action, "cli")
        finally:
            store.close()
        return f"task {done.id}: {done.status} ({done.owner_role}, owner {done.owner or '-'})"

    try:
        typer.echo(asyncio.run(go()))
    except TaskNotFound:
        raise typer.BadParameter("no task with that id", param_hint="ID") from None
    except TaskClosed as closed:
        typer.echo(f"error: the task is {closed.status}", err=True)
        raise typer.Exit(1) from None


@app.command("assign")
def assign(
    task_id: TaskIdArg,
    owner: Annotated[str, typer.Argument(help="Who works it (a staff id).")],
    database_url: DatabaseOption = "",
) -> None:
    """Take a task."""
    _act(task_id, TaskAction("assign", owner=owner), database_url)


@app.command("reassign")
def reassign(
    task_id: TaskIdArg,
    owner: Annotated[str | None, typer.Option(help="New owner; none: the role's queue.")] = None,
    role: Annotated[str | None, typer.Option(help="Move it to this role's queue.")] = None,
    database_url: DatabaseOption = "",
) -> None:
    """Give a task to someone else, or to another role."""
    _act(task_id, TaskAction("reassign", owner=owner, role=role), database_url)


@app.command("complete")
def complete(
    task_id: TaskIdArg,
    outcome: Annotated[str, typer.Option(help="What the journey branches on.")] = "done",
    database_url: DatabaseOption = "",
) -> None:
    """Complete a task; the journey waiting on it goes on (once, even if you repeat it)."""
    _act(task_id, TaskAction("complete", outcome=outcome), database_url)
