"""`starter.py keys ...`: API keys for the /v1 API and partner webhooks.

    starter.py keys create hub-intake --scope journeys:write --scope journeys:read
    starter.py keys list
    starter.py keys revoke 3f9a1c0b7d2e

The key (`pw_<id>_<secret>`) is printed once, by `create`; the store keeps only a keyed
hash of it (PITWALL_AUTH_KEY_PEPPER must be the same here as on the API servers).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.timeline import DatabaseOption
from settings import get_settings
from store import Store
from store.api_keys import SCOPES, UnknownScope

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


def _open(database_url: str) -> Store:
    settings = get_settings()
    return Store.open(
        database_url or settings.stack.database(),
        api_key_pepper=settings.auth.key_pepper.get_secret_value(),
    )


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Who holds it: a service or partner label.")],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="A scope (repeat): " + ", ".join(SCOPES) + ".",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
    database_url: DatabaseOption = "",
) -> None:
    """Make a key and print it once (it cannot be shown again)."""
    store = _open(database_url)
    try:
        made = store.api_keys.create(name, scope)
    except (UnknownScope, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps(
                {"key_id": made.key_id, "name": made.key.name, "scopes": made.key.scopes,
                 "key": made.secret}
            )
        )  # fmt: skip
        return
    typer.echo(f"key id   {made.key_id}")
    typer.echo(f"name     {made.key.name}")
    typer.echo(f"scopes   {' '.join(made.key.scopes)}")
    typer.echo(f"key      {made.secret}")
    typer.echo("Store the key now: it is not kept and cannot be shown again.", err=True)


@app.command("list")
def list_keys(
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    database_url: DatabaseOption = "",
) -> None:
    """Every key: id, name, scopes, created, last used, revoked (never the secret)."""
    store = _open(database_url)
    try:
        keys = store.api_keys.list(include_revoked=not active)
    finally:
        store.close()
    if not keys:
        typer.echo("no API keys")
        return
    head = f"{'key id':12}  {'name':24}  {'created (UTC)':16}  {'last used':16}  state    scopes"
    typer.echo(head)
    for k in keys:
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-"
        state = "revoked" if k.revoked_at else "active"
        typer.echo(
            f"{k.key_id:12}  {k.name[:24]:24}  {k.created_at:%Y-%m-%d %H:%M}  {used:16}  "
            f"{state:7}  {' '.join(k.scopes)}"
        )


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (see `keys list`).")],
    database_url: DatabaseOption = "",
) -> None:
    """Revoke a key: every request with it is refused (401) from now on."""
    store = _open(database_url)
    try:
        key = store.api_keys.revoke(key_id.strip())
    finally:
        store.close()
    if key is None:
        typer.echo(f"error: no API key {key_id}", err=True)
        raise typer.Exit(2)
    assert key.revoked_at is not None
    typer.echo(f"revoked {key.key_id} ({key.name}) at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
