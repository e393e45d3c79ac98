"""A report (or a comparison) as one self-contained HTML page: CSS inline, charts as
PNGs embedded base64, no script and nothing fetched. Every text is escaped; only
aggregates appear (no patient's record)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from html import escape

from simulate import charts
from simulate.report import (
    ADHERENT_PDC,
    Comparison,
    Delta,
    Report,
    fmt,
    fmt_delta,
)

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d232b; max-width: 980px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d5dbe3; }
p.lead { color: #444; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e6e9ee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f8; }
tr.notable td { background: #fff3cd; font-weight: 600; }
.note { color: #555; font-size: .85rem; }
.na { color: #777; font-style: italic; }
img { max-width: 100%; display: block; margin: .6rem 0; }
ul.notable li { margin: .15rem 0; }
"""

Labelled = list[tuple[str, Report]]


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = classes[i] if i < len(classes) and classes[i] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [f"<td>{escape(cell)}</td>" for cell in row]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _p(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{escape(text)}</p>'


def _run_rows(labelled: Labelled) -> list[list[str]]:
    facts = [
        ("template", lambda r: r.run.template),
        ("scenario", lambda r: r.run.scenario),
        ("scenario description", lambda r: r.run.scenario_description),
        ("seed", lambda r: r.run.seed),
        ("patients", lambda r: str(r.run.patients)),
        ("months", lambda r: f"{r.run.months:g}"),
        ("patient-years", lambda r: f"{r.run.patient_years:g}"),
        ("run time", lambda r: fmt(r.run.seconds, "seconds")),
        ("patient-years per second", lambda r: fmt(r.run.patient_years_per_second, "rate")),
        ("cost calibration", lambda r: r.cost.calibration),
    ]
    return [[name, *(get(r) for _, r in labelled)] for name, get in facts]


# ------------------------------------------------------------------------ one report


def _therapy(r: Report) -> str:
    t = r.time_to_therapy
    if not t.applicable:
        return _p(f"Not applicable: {t.reason}.", "na") + _p(f"Therapy marker: {t.rule}.")
    rows = [
        ["p50", fmt(t.p50_days, "days")],
        ["p90", fmt(t.p90_days, "days")],
        ["mean", fmt(t.mean_days, "days")],
        ["reached therapy", f"{t.reached} ({fmt(t.share_reached, 'share')})"],
        ["not within the horizon", str(t.not_reached)],
    ]
    return _table(["", "value"], rows) + _p(
        f"Therapy marker: {t.rule}. Percentiles are over the patients who reached it."
    )


def _funnel(r: Report) -> str:
    rows = [
        [s.stage, str(s.reached), fmt(s.share, "share"),
         "" if s.drop_off is None else f"{s.drop_off} ({fmt(s.drop_off_share, 'share')})"]
        for s in r.funnel.stages
    ]  # fmt: skip
    return _table(["stage", "patients reached", "share", "drop-off from previous"], rows) + _p(
        f"Order: {r.funnel.order}. A negative drop-off is a branch (more patients took "
        "this stage than the one listed before it)."
    )


def _distribution(title: str, counts: dict[str, int], n: int) -> str:
    rows = [[k, str(v), fmt(v / n if n else None, "share")] for k, v in counts.items()]
    return _table([title, "patients", "share"], rows)


def _outcomes(r: Report) -> str:
    n = r.run.patients
    f = r.funnel
    return (
        _distribution("final stage", f.final_stage, n)
        + _distribution("final status", f.final_status, n)
        + _distribution("outcome", f.outcome, n)
        + _p("Journeys still running at the horizon end as cancelled, outcome 'horizon'.")
    )


def _messages(r: Report) -> str:
    m = r.messages
    rows = [["all decisions", str(m.decisions.total), f"{m.decisions.per_patient:.2f}"]]
    rows.append(["sent", str(m.sent.total), f"{m.sent.per_patient:.2f}"])
    rows += [[f"  sent by {k}", str(c.total), f"{c.per_patient:.2f}"]
             for k, c in m.sent_by_channel.items()]  # fmt: skip
    rows.append(["deferred", str(m.deferred.total), f"{m.deferred.per_patient:.2f}"])
    rows += [[f"  deferred: {k}", str(c.total), f"{c.per_patient:.2f}"]
             for k, c in m.deferred_by_reason.items()]  # fmt: skip
    rows.append(["suppressed", str(m.suppressed.total), f"{m.suppressed.per_patient:.2f}"])
    rows += [[f"  suppressed: {k}", str(c.total), f"{c.per_patient:.2f}"]
             for k, c in m.suppressed_by_reason.items()]  # fmt: skip
    return _table(["contact decisions", "total", "per patient"], rows) + _p(
        "Each contact-policy decision counts: a message deferred and sent later counts "
        "once as deferred and once as sent."
    )


def _tasks(r: Report) -> str:
    rows = [
        [t.role, str(t.tasks), f"{t.per_patient:.2f}", str(t.breached),
         fmt(t.breach_share, "share")]
        for t in [*r.tasks.by_role, r.tasks.total]
    ]  # fmt: skip
    return _table(["role", "tasks", "per patient", "SLA breached", "breach share"], rows)


def _adherence(r: Report) -> str:
    a = r.adherence
    if not a.tracked:
        return _p(f"Not applicable: {a.rule}.", "na")
    rows = [
        ["patients measured", str(a.measured)],
        [f"adherent (PDC ≥ {ADHERENT_PDC})", fmt(a.share_adherent, "share")],
        ["mean PDC", fmt(a.mean_pdc, "share")],
        ["median PDC", fmt(a.median_pdc, "share")],
    ]
    return _table(["", "value"], rows) + _p(f"Rule: {a.rule}.")


def _cost(r: Report) -> str:
    c = r.cost
    rows = [
        ["actions per patient-month", f"{c.actions_per_patient_month:.2f}"],
        ["history events per journey", f"{c.history_events_per_journey:.1f}"],
        ["history bytes per journey", fmt(c.history_bytes_per_journey, "bytes")],
        ["calibration", c.calibration],
    ]
    return _table(["", "value"], rows) + _p(
        "What Temporal would record and bill for these journeys (simulate/cost.py); "
        "'uncalibrated' counts one action and one event per activity, timer and signal."
    )


# ------------------------------------------------------------------------ comparison


def _delta_table(deltas: Sequence[Delta], a: str, b: str) -> str:
    if not deltas:
        return _p("Not applicable to either side (see each below).", "na")
    rows, classes = [], []
    for d in deltas:
        absolute, relative = fmt_delta(d)
        rows.append([d.metric, fmt(d.a, d.unit), fmt(d.b, d.unit), absolute, relative,
                     "◆" if d.notable else ""])  # fmt: skip
        classes.append("notable" if d.notable else "")
    return _table(["metric", a, b, "Δ", "Δ %", "notable"], rows, classes)


SECTIONS: list[tuple[str, str, Callable[[Report], str], Callable[[Labelled], bytes | None]]] = [
    ("Time to therapy", "time to therapy", _therapy, charts.therapy_chart),
    ("Funnel by stage", "funnel", _funnel, charts.funnel_chart),
    ("Where journeys ended", "outcome", _outcomes, lambda _: None),
    ("Messages", "messages", _messages, charts.messages_chart),
    ("Human tasks and SLA breaches", "tasks", _tasks, charts.tasks_chart),
    ("Adherence (PDC)", "adherence", _adherence, charts.pdc_chart),
    ("Orchestration cost", "cost", _cost, lambda _: None),
]

WHAT = (
    "A cohort simulation: each sampled patient's journey ran on a virtual clock through the "
    "production interpreter, step handlers and contact policy, its partners (payer, "
    "pharmacy, ...) and its own behaviour scripted from the scenario's distributions. It "
    "needs no Temporal server. The numbers below are aggregates over the cohort: no "
    "patient's own record appears. They say what the template would do to patients like "
    "these, under these assumptions; they are not a forecast."
)
WHAT_COMPARE = (
    " Both sides ran the same sampled patients (same scenario and seed unless noted: "
    "patient i is the same person), so differences come from the templates or scenarios."
)


def _page(title: str, body: list[str]) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def report_html(report: Report) -> str:
    run = report.run
    title = f"Cohort simulation: {run.template} · {run.scenario}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _p(WHAT, "lead"),
        "<h2>Run</h2>",
        _table(["", "value"], _run_rows([("", report)])),
    ]
    for heading, _, section, chart in SECTIONS:
        body += [f"<h2>{escape(heading)}</h2>", section(report),
                 _img(chart([(run.template, report)]), heading)]  # fmt: skip
    return _page(title, body)


def side_label(report: Report) -> str:
    return f"{report.run.template} · {report.run.scenario}"


def comparison_html(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    la, lb = f"A: {side_label(a)}", f"B: {side_label(b)}"
    title = f"Cohort simulation: {side_label(a)} vs {side_label(b)}"
    labelled: Labelled = [(la, a), (lb, b)]
    notable = comparison.notable()
    body = [
        f"<h1>{escape(title)}</h1>",
        _p(WHAT + WHAT_COMPARE, "lead"),
        "<h2>Run</h2>",
        _table(["", la, lb], _run_rows(labelled)),
        "<h2>Notable differences</h2>",
    ]
    if notable:
        items = []
        for d in notable:
            absolute, relative = fmt_delta(d)
            items.append(
                f"<li>{escape(d.section)}: {escape(d.metric)}: {escape(fmt(d.a, d.unit))} → "
                f"{escape(fmt(d.b, d.unit))} ({escape(absolute)}, {escape(relative)})</li>"
            )
        body.append('<ul class="notable">' + "".join(items) + "</ul>")
    else:
        body.append(_p("None by the rule below.", "na"))
    body.append(_p(f"Rule: {comparison.rule}"))
    body += [_p(note, "lead") for note in comparison.notes]
    for heading, key, section, chart in SECTIONS:
        deltas = [d for d in comparison.deltas if d.section == key]
        body += [f"<h2>{escape(heading)}</h2>", _delta_table(deltas, "A", "B"),
                 _img(chart(labelled), heading)]  # fmt: skip
        body += [
            f"<details><summary>{escape(label)}</summary>{section(r)}</details>"
            for label, r in labelled
        ]
    return _page(title, body)


def to_html(result: Report | Comparison) -> str:
    return comparison_html(result) if isinstance(result, Comparison) else report_html(result)
