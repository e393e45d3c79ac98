"""The report's charts as PNG bytes (matplotlib, Agg: no display needed).

Each function takes one or two labelled reports; two are drawn side by side (grouped
bars) or overlaid (histograms on the same bins). A chart with nothing to show is None.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simulate.report import ADHERENT_PDC, Histogram, Report

Labelled = Sequence[tuple[str, Report]]
COLOURS = ("#2f6db3", "#e07b24")
BREACH_COLOURS = ("#12365f", "#8a4210")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=96, metadata={"Software": None})
    return buf.getvalue()


def _figure(height: float = 3.2) -> Figure:
    return Figure(figsize=(7.2, height))


def _histogram(
    ax: Axes, items: Sequence[tuple[str, Histogram]], xlabel: str, percent: bool = False
) -> None:
    for k, (label, h) in enumerate(items):
        lefts = h.edges[:-1]
        widths = [b - a for a, b in zip(h.edges, h.edges[1:], strict=False)]
        total = sum(h.counts) or 1
        heights = [100 * c / total for c in h.counts] if percent else list(h.counts)
        ax.bar(lefts, heights, width=widths, align="edge", alpha=0.55 if len(items) > 1 else 0.9,
               color=COLOURS[k % 2], edgecolor="white", label=label)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("% of patients" if percent else "patients")
    if len(items) > 1:
        ax.legend(fontsize=8)


def therapy_chart(reports: Labelled) -> bytes | None:
    items = [(label, r.time_to_therapy.histogram) for label, r in reports
             if r.time_to_therapy.applicable and r.time_to_therapy.histogram]  # fmt: skip
    if not items:
        return None
    fig = _figure()
    ax = fig.subplots()
    _histogram(ax, [(lbl, h) for lbl, h in items if h is not None], "days to therapy")
    ax.set_title("Time to therapy (patients who reached it)", fontsize=10)
    return _png(fig)


def _grouped(
    title: str,
    categories: list[str],
    series: Sequence[tuple[str, list[float]]],
    xlabel: str,
    overlay: Sequence[tuple[str, list[float]]] = (),
) -> bytes | None:
    """Horizontal bars, one group per category, one bar per series (top to bottom)."""
    if not categories:
        return None
    fig = _figure(max(2.4, 1.2 + 0.28 * len(categories) * max(1, len(series))))
    ax = fig.subplots()
    n = len(series)
    height = 0.8 / n
    for k, (label, values) in enumerate(series):
        ys = [i + (k - (n - 1) / 2) * height for i in range(len(categories))]
        ax.barh(ys, values, height=height * 0.95, color=COLOURS[k % 2], label=label)
        if overlay:
            ax.barh(ys, overlay[k][1], height=height * 0.95, color=BREACH_COLOURS[k % 2],
                    label=overlay[k][0])  # fmt: skip
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, f" {v:.3g}", va="center", fontsize=7)
    ax.set_yticks(range(len(categories)), categories, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    if n > 1 or overlay:  # above the bars, under the title, whatever the chart's height
        rows = -(-(n * (2 if overlay else 1)) // 2)
        ax.set_title(title, fontsize=10, pad=8 + 14 * rows)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                  frameon=False)  # fmt: skip
    else:
        ax.set_title(title, fontsize=10)
    return _png(fig)


def funnel_chart(reports: Labelled) -> bytes | None:
    stages: list[str] = []
    for _, r in reports:
        stages += [s.stage for s in r.funnel.stages if s.stage not in stages]
    series = []
    for label, r in reports:
        share = {s.stage: 100 * s.share for s in r.funnel.stages}
        series.append((label, [share.get(s, 0.0) for s in stages]))
    return _grouped("Funnel: patients who ever reached each stage", stages, series,
                    "% of patients")  # fmt: skip


def _message_categories(r: Report) -> dict[str, float]:
    m = r.messages
    out = {f"sent: {k}": c.per_patient for k, c in m.sent_by_channel.items()}
    out |= {f"deferred: {k}": c.per_patient for k, c in m.deferred_by_reason.items()}
    out |= {f"suppressed: {k}": c.per_patient for k, c in m.suppressed_by_reason.items()}
    return out


def messages_chart(reports: Labelled) -> bytes | None:
    per = [(label, _message_categories(r)) for label, r in reports]
    categories: list[str] = []
    for _, values in per:
        categories += [c for c in values if c not in categories]
    series = [(label, [values.get(c, 0.0) for c in categories]) for label, values in per]
    return _grouped("Messages per patient, by channel and decision", categories, series,
                    "decisions per patient")  # fmt: skip


def tasks_chart(reports: Labelled) -> bytes | None:
    roles: list[str] = []
    for _, r in reports:
        roles += [t.role for t in r.tasks.by_role if t.role not in roles]
    series, breaches = [], []
    for label, r in reports:
        by = {t.role: t for t in r.tasks.by_role}
        n = r.run.patients or 1
        series.append((f"{label} tasks", [by[x].per_patient if x in by else 0.0 for x in roles]))
        breaches.append(
            (f"{label} SLA breached", [by[x].breached / n if x in by else 0.0 for x in roles])
        )
    return _grouped("Human tasks per patient by role (dark: SLA breached)", roles, series,
                    "tasks per patient", overlay=breaches)  # fmt: skip


def pdc_chart(reports: Labelled) -> bytes | None:
    items = [(label, r.adherence.histogram) for label, r in reports
             if r.adherence.tracked and r.adherence.histogram]  # fmt: skip
    if not items:
        return None
    fig = _figure()
    ax = fig.subplots()
    _histogram(ax, [(lbl, h) for lbl, h in items if h is not None], "PDC", percent=True)
    ax.axvline(ADHERENT_PDC, color="#444", linestyle="--", linewidth=1)
    ax.text(ADHERENT_PDC, ax.get_ylim()[1] * 0.95, " adherent", fontsize=8, va="top")
    ax.set_title("Proportion of days covered (one per patient)", fontsize=10)
    return _png(fig)
