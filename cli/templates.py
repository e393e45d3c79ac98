"""`starter.py templates ...`: validate template files and show a template as text or Mermaid.

Output is plain text (colour only on a terminal), so it reads the same when piped.
Exit codes: 0 ok, 1 an invalid template, 2 an unknown template id or a bad argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domain.template import JourneyTemplate
from domain.template_loader import (
    TEMPLATE_SUFFIXES,
    TemplateError,
    UnknownTemplate,
    display_path,
    get_template,
    load_template,
    template_files,
    templates_dir,
    unreachable_steps,
)
from domain.template_render import to_mermaid, to_text

app = typer.Typer(help="Validate and inspect journey templates.", no_args_is_help=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Templates directory (default: $PITWALL_TEMPLATES_DIR or the repo's templates/).",
        file_okay=False,
    ),
]


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Template files or directories (default: the templates directory)."),
    ] = None,
) -> None:
    """Check template files; print ✓ per valid one, every problem of an invalid one."""
    try:
        files = _expand(paths or [templates_dir()])
    except TemplateError as exc:
        _err(str(exc))
        raise typer.Exit(2) from None
    if not files:
        _err("no template files found")
        raise typer.Exit(2)
    failed = False
    seen: dict[tuple[str, int], Path] = {}
    for path in files:
        try:
            template = load_template(path)
        except TemplateError as exc:
            failed = True
            count = f"{len(exc.lines)} problem{'s' if len(exc.lines) != 1 else ''}"
            _err(typer.style("✗ ", fg="red") + f"{display_path(path)}: {count}")
            _err(str(exc))
            continue
        key = (template.id, template.version)
        if key in seen:
            failed = True
            _err(
                typer.style("✗ ", fg="red")
                + f"{display_path(path)}: template {template.id!r} version "
                f"{template.version} is also defined in {display_path(seen[key])}"
            )
            continue
        seen[key] = path
        typer.echo(
            typer.style("✓ ", fg="green")
            + f"{display_path(path)}: {template.id} v{template.version} "
            f"({len(template.steps)} steps)"
        )
        orphans = unreachable_steps(template)
        if orphans:
            _err(f"  warning: step(s) no path reaches: {', '.join(orphans)}")
    if failed:
        raise typer.Exit(1)


@app.command()
def show(
    template_id: Annotated[str, typer.Argument(help="Template id, e.g. specialty_start.")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Version (default: latest).")
    ] = None,
    mermaid: Annotated[
        bool | None,
        typer.Option(
            "--mermaid/--text",
            help="Only the Mermaid flowchart, or only the text listing (default: both).",
        ),
    ] = None,
    directory: DirOption = None,
) -> None:
    """Print a template as a numbered step listing and/or a Mermaid flowchart."""
    try:
        template: JourneyTemplate = get_template(template_id, directory, version)
    except UnknownTemplate as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from None
    except TemplateError as exc:
        _err(str(exc))
        raise typer.Exit(1) from None
    if mermaid is None:
        typer.echo(to_text(template))
        typer.echo("")
        typer.echo("```mermaid\n" + to_mermaid(template) + "\n```")
    elif mermaid:
        typer.echo(to_mermaid(template))
    else:
        typer.echo(to_text(template))


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += template_files(path)
        elif path.exists() or path.suffix in TEMPLATE_SUFFIXES:
            files.append(path)  # a missing file is reported by load_template
        else:
            raise TemplateError(path, ["no such file or directory"])
    return files


@app.command()
def reference() -> None:
    """Print the template reference (Markdown, for the README): step kinds, partner
    actions and built-in event types, from what the code declares."""
    from domain.template_reference import reference as render

    typer.echo(render())
