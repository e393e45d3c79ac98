"""Pitwall client CLI: start and steer journeys, inspect templates.

    python starter.py --help
"""

from __future__ import annotations

import typer

from cli.templates import app as templates_app

app = typer.Typer(help="Pitwall: start, inspect and steer therapy journeys.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


if __name__ == "__main__":
    app()
