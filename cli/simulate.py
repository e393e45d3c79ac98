"""`starter.py simulate TEMPLATE[@VERSION]`: simulate a cohort on the virtual clock and
report what a program manager would ask: time to therapy, the funnel, messages, human
tasks and SLA breaches, adherence and what Temporal would cost.

    python starter.py simulate refill_adherence --patients 200 --months 12 --seed 1
    python starter.py simulate specialty_start@1 --compare specialty_start@2
    python starter.py simulate refill_adherence --compare-scenario adherence_risk

Prints a summary, writes a self-contained HTML report (default under .data/simulations/)
and, with --json, the report as JSON. `--compare` runs a second template (and/or
`--compare-scenario` a second scenario) on the same sampled patients: patient i of both
runs is the same person, so differences come from the template (or the scenario).
Needs no Temporal server. Exit codes: 0 ok, 2 a bad argument, template or scenario.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from domain.template import JourneyTemplate
from domain.template_loader import TemplateError, UnknownTemplate, get_template
from simulate.cohort import Cohort, NoScript, run_cohort, script_for
from simulate.cohort_scenario import (
    MAX_MONTHS,
    CohortScenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
)
from simulate.report import (
    NOTABLE_SHORT,
    Comparison,
    Report,
    build_comparison,
    build_report,
    fmt,
    fmt_delta,
)

DEFAULT_DIR = Path(".data") / "simulations"


class _Bad(Exception):
    """A bad argument: one line for the user, exit code 2."""


def one_line(message: str) -> str:
    """A message on one line (a YAML parser's carets and blank lines dropped)."""
    parts = [line.strip() for line in message.splitlines()]
    return " ".join(p for p in parts if p.strip("^ "))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(2)


def parse_template(ref: str) -> JourneyTemplate:
    """ "id" (latest version) or "id@version"."""
    template_id, sep, version_text = ref.partition("@")
    version: int | None = None
    if sep:
        if not version_text.isdigit() or int(version_text) < 1:
            raise _Bad(f"bad template {ref!r}: use ID or ID@VERSION (a version from 1)")
        version = int(version_text)
    try:
        return get_template(template_id, version=version)
    except UnknownTemplate as exc:
        raise _Bad(str(exc)) from None
    except TemplateError as exc:
        more = f" (and {len(exc.lines) - 1} more problems)" if len(exc.lines) > 1 else ""
        raise _Bad(f"{exc.lines[0] if exc.lines else exc}{more}") from None


def scenario_label(name_or_path: str) -> str:
    """A bundled scenario's name, or a file's name."""
    return name_or_path if name_or_path in bundled_scenarios() else Path(name_or_path).name


def _load(name_or_path: str) -> CohortScenario:
    try:
        return load_scenario(name_or_path)
    except ScenarioError as exc:
        raise _Bad(f"scenario {exc}") from None


def _slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts)).strip("_")


def default_html(template: JourneyTemplate, scenario: str, seed: int,
                 other: tuple[JourneyTemplate, str] | None) -> Path:  # fmt: skip
    name = _slug(f"{template.id}-v{template.version}", Path(scenario).stem, f"seed{seed}")
    if other is not None:
        name += "-vs-" + _slug(f"{other[0].id}-v{other[0].version}", Path(other[1]).stem)
    return DEFAULT_DIR / f"{name}.html"


class _Throughput(ProgressColumn):
    """Patient-years simulated per second so far."""

    def __init__(self, months: float) -> None:
        super().__init__()
        self.months = months

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not elapsed or not task.completed:
            return Text("- patient-years/s", style="progress.data.speed")
        rate = task.completed * self.months / 12 / elapsed
        return Text(f"{rate:.1f} patient-years/s", style="progress.data.speed")


def _run(
    progress: Progress, label: str, template: JourneyTemplate, scenario: CohortScenario,
    patients: int, months: float, seed: int, workers: int,
) -> Cohort:  # fmt: skip
    task = progress.add_task(label, total=patients)
    return run_cohort(
        template, scenario, patients=patients, months=months, seed=seed, workers=workers,
        progress=lambda done: progress.update(task, completed=done),
    )  # fmt: skip


# ------------------------------------------------------------------------ terminal summary


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _kv(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_report(console: Console, r: Report) -> None:
    run = r.run
    console.print(
        f"[bold]{run.template}[/] · scenario {run.scenario} · seed {run.seed} · "
        f"{run.patients} patients x {run.months:g} months = {run.patient_years:g} patient-years "
        f"in {fmt(run.seconds, 'seconds')} ({fmt(run.patient_years_per_second, 'rate')})",
        markup=True, highlight=False,
    )  # fmt: skip
    t = r.time_to_therapy
    if t.applicable:
        console.print(_kv("Time to therapy", [
            ("p50", fmt(t.p50_days, "days")), ("p90", fmt(t.p90_days, "days")),
            ("reached", f"{t.reached} ({fmt(t.share_reached, 'share')})"), ("marker", t.rule),
        ]))  # fmt: skip
    else:
        console.print(f"Time to therapy: not applicable ({t.reason})", highlight=False)
    funnel = Table(title="Funnel", title_justify="left")
    for column in ("stage", "reached", "share", "drop-off"):
        funnel.add_column(column, justify="left" if column == "stage" else "right")
    for s in r.funnel.stages:
        drop = "" if s.drop_off is None else f"{s.drop_off} ({fmt(s.drop_off_share, 'share')})"
        funnel.add_row(s.stage, str(s.reached), fmt(s.share, "share"), drop)
    console.print(funnel)
    n = r.run.patients or 1
    ends = [(f"status {k}", v) for k, v in r.funnel.final_status.items()]
    ends += [(f"outcome {k}", v) for k, v in r.funnel.outcome.items()]
    console.print(
        _kv("Final status / outcome", [(k, f"{v} ({fmt(v / n, 'share')})") for k, v in ends])
    )
    m = r.messages
    rows = [("sent", f"{m.sent.total} ({m.sent.per_patient:.2f}/patient)")]
    rows += [(f"  {k}", f"{c.total} ({c.per_patient:.2f}/patient)")
             for k, c in m.sent_by_channel.items()]  # fmt: skip
    rows += [("deferred", f"{m.deferred.total} ({m.deferred.per_patient:.2f}/patient)")]
    rows += [(f"  {k}", f"{c.total} ({c.per_patient:.2f}/patient)")
             for k, c in m.deferred_by_reason.items()]  # fmt: skip
    rows += [("suppressed", f"{m.suppressed.total} ({m.suppressed.per_patient:.2f}/patient)")]
    rows += [(f"  {k}", f"{c.total} ({c.per_patient:.2f}/patient)")
             for k, c in m.suppressed_by_reason.items()]  # fmt: skip
    console.print(_kv("Messages (contact decisions)", rows))
    tasks = Table(title="Human tasks", title_justify="left")
    for column in ("role", "tasks", "per patient", "SLA breached", "breach share"):
        tasks.add_column(column, justify="left" if column == "role" else "right")
    for role in [*r.tasks.by_role, r.tasks.total]:
        tasks.add_row(role.role, str(role.tasks), f"{role.per_patient:.2f}", str(role.breached),
                      fmt(role.breach_share, "share"))  # fmt: skip
    console.print(tasks)
    a = r.adherence
    if a.tracked:
        console.print(_kv("Adherence", [
            ("adherent (PDC ≥ 0.8)", fmt(a.share_adherent, "share")),
            ("median PDC", fmt(a.median_pdc, "share")), ("measured", str(a.measured)),
        ]))  # fmt: skip
    c = r.cost
    console.print(_kv("Orchestration cost", [
        ("actions per patient-month", f"{c.actions_per_patient_month:.2f}"),
        ("history per journey", f"{c.history_events_per_journey:.0f} events, "
                                f"{fmt(c.history_bytes_per_journey, 'bytes')}"),
        ("calibration", c.calibration),
    ]))  # fmt: skip


def print_comparison(console: Console, cmp: Comparison) -> None:
    a, b = cmp.a.run, cmp.b.run
    console.print(
        f"A: [bold]{a.template}[/] · {a.scenario}   B: [bold]{b.template}[/] · {b.scenario}   "
        f"(same {a.patients} patients x {a.months:g} months, seed {a.seed})",
        markup=True, highlight=False,
    )  # fmt: skip
    table = Table(title="A vs B", title_justify="left")
    for column in ("section", "metric", "A", "B", "Δ", "Δ %", ""):
        table.add_column(column, justify="left" if column in ("section", "metric") else "right")
    section = None
    for d in cmp.deltas:
        absolute, relative = fmt_delta(d)
        table.add_row(
            d.section if d.section != section else "", d.metric, fmt(d.a, d.unit),
            fmt(d.b, d.unit), absolute, relative, "◆" if d.notable else "",
            style="bold yellow" if d.notable else None,
        )  # fmt: skip
        section = d.section
    console.print(table)
    not_applicable = {x.run.template: x.time_to_therapy.reason for x in (cmp.a, cmp.b)
                      if not x.time_to_therapy.applicable}  # fmt: skip
    for name, reason in not_applicable.items():
        console.print(f"Time to therapy for {name}: not applicable ({reason})", highlight=False)
    for note in cmp.notes:
        console.print(note, style="bold", highlight=False)
    console.print(f"{len(cmp.notable())} notable differences (◆): {NOTABLE_SHORT}",
                  highlight=False)  # fmt: skip


# ------------------------------------------------------------------------ command


def simulate(
    template: Annotated[
        str, typer.Argument(help="Template id, optionally @version: refill_adherence@1.")
    ],
    patients: Annotated[int, typer.Option(help="Patients in the cohort.")] = 200,
    months: Annotated[float, typer.Option(help=f"Months simulated, up to {MAX_MONTHS}.")] = 12,
    seed: Annotated[int, typer.Option(help="Sampling seed: the same seed, the same cohort.")] = 1,
    scenario: Annotated[
        str, typer.Option(help="Scenario YAML file or a bundled name (typical, ...).")
    ] = "typical",
    compare: Annotated[
        str | None,
        typer.Option(help="A second template[@version] run on the same sampled patients."),
    ] = None,
    compare_scenario: Annotated[
        str | None,
        typer.Option(help="A second scenario (file or name) for the comparison run."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help=f"Where the HTML report goes (default: {DEFAULT_DIR}/<run>.html)."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Processes to run patients in (0: one per core); the same cohort."),
    ] = 0,
) -> None:
    """Simulate a cohort on the virtual clock (no Temporal server) and report on it."""
    try:
        if patients <= 0:
            raise _Bad(f"--patients must be at least 1, got {patients}")
        if not 0 < months <= MAX_MONTHS:
            raise _Bad(f"--months must be in (0, {MAX_MONTHS}], got {months:g}")
        if workers < 0:
            raise _Bad(f"--workers must be 0 (one per core) or more, got {workers}")
        processes = workers or os.cpu_count() or 1
        first = parse_template(template)
        second = parse_template(compare) if compare else None
        scenario_a = _load(scenario)
        scenario_b = _load(compare_scenario) if compare_scenario else None
        for t in (first, second):
            if t is not None:
                script_for(t)
    except _Bad as exc:
        raise _fail(str(exc)) from None
    except NoScript as exc:
        raise _fail(str(exc)) from None

    comparing = second is not None or scenario_b is not None
    other_template = second or first
    other_scenario = compare_scenario or scenario
    label_a, label_b = scenario_label(scenario), scenario_label(other_scenario)
    stderr = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
        TextColumn("patients"), _Throughput(months), TimeElapsedColumn(),
        console=stderr, transient=True,
    ) as progress:  # fmt: skip
        tag = "A " if comparing else ""
        cohort_a = _run(progress, f"{tag}{first.id}@{first.version} · {label_a}", first,
                        scenario_a, patients, months, seed, processes)  # fmt: skip
        cohort_b = None
        if comparing:
            cohort_b = _run(
                progress, f"B {other_template.id}@{other_template.version} · {label_b}",
                other_template, scenario_b or scenario_a, patients, months, seed, processes,
            )  # fmt: skip

    result: Report | Comparison
    console = _console()
    if cohort_b is not None:
        result = build_comparison(cohort_a, cohort_b, first, other_template,
                                  scenario_a=label_a, scenario_b=label_b)  # fmt: skip
        print_comparison(console, result)
    else:
        result = build_report(cohort_a, first, scenario_name=label_a)
        print_report(console, result)

    from simulate.report_html import to_html  # matplotlib: only when a report is drawn

    target = html or default_html(
        first, scenario, seed, (other_template, other_scenario) if comparing else None
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_html(result), encoding="utf-8")
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename}: {exc.strerror}") from None
    typer.echo(f"HTML report: {target}")
    if json_path is not None:
        typer.echo(f"JSON: {json_path}")
