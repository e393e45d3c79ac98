"""What a simulated cohort says to a program manager: a `Report` (plain data, JSON) built
from one `Cohort`, and a `Comparison` of two reports side by side.

    report = build_report(cohort, template)
    comparison = build_comparison(cohort_a, cohort_b, template_a, template_b)

Everything in a report is an aggregate over the cohort: counts, shares, percentiles and
histograms. No patient's own record (index, days, steps) is kept, so a report can be
shared as it is. The rules, section by section:

Time to therapy (days from the journey's start). The therapy marker is, in this order:
the milestone `first_dose_confirmed` if the template declares it (or a patient reached
it), else the milestone `delivered`, else the first entry into any of the stages
DELIVERED, ON_THERAPY, ONBOARDED. A journey whose first step already enters a therapy
stage (refill_adherence starts on therapy) has no time to therapy: the section says
"not applicable" rather than 0. Percentiles (p50, p90) are over the patients who reached
therapy within the horizon, by linear interpolation between order statistics; the share
that reached it is reported next to them, since a journey that gets fewer patients to
therapy can look faster.

Funnel. A stage counts once per patient who ever entered it. The order is the template's
(the order stages first appear in its steps, nested steps included), then stages the
template's steps enter on their own (AT_RISK, DISCONTINUED from refill_watch) by the mean
day patients first entered them; without a template, every stage is ordered that way.
Drop-off is from the previous funnel stage: `previous.reached - reached` and that as a
share of `previous.reached`. Journeys branch (NO_PA_REQUIRED or PA_SUBMITTED), so a stage
can hold more patients than the one before it: a negative drop-off.

Messages count contact-policy decisions: a message deferred (quiet hours, a cap) and
sent later counts once as deferred and once as sent. Per patient is over the whole cohort.

Tasks: every human task opened, by role; a breach is a task whose SLA passed before it
was completed (TaskRecord.escalated); breach share = breaches / tasks of the role.

Adherence (only where the template tracks it: some patient has a PDC): one PDC per
patient, that of the latest measurement year that closed within the horizon, else the
open year's PDC to date. Adherent: PDC >= 0.8.

Cost: `simulate.cost.estimate` (what Temporal would record and bill) and its calibration.

Comparison: every number of the two reports, b - a (absolute) and (b - a) / |a|
(relative, none when a is 0). See NOTABLE_RULE for which differences are flagged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.template import JourneyTemplate
from simulate.cohort import Cohort, PatientResult
from simulate.cost import estimate

THERAPY_MILESTONES = ("first_dose_confirmed", "delivered")
THERAPY_STAGES = ("DELIVERED", "ON_THERAPY", "ONBOARDED")
ADHERENT_PDC = 0.8
# Histogram bin widths for days: the smallest giving at most MAX_BINS bins.
DAY_WIDTHS = (1, 2, 7, 14, 28, 56, 91, 182, 365, 730)
MAX_BINS = 20
PDC_EDGES = [round(i / 10, 1) for i in range(11)]

Unit = Literal["days", "share", "per_patient", "per_patient_month", "bytes", "events", "seconds",
               "rate"]  # fmt: skip


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Histogram(_Data):
    """`counts[i]` values fell in [edges[i], edges[i+1]) (the last bin is closed)."""

    edges: list[float]
    counts: list[int]


class TimeToTherapy(_Data):
    applicable: bool
    rule: str  # which marker counted as therapy
    reason: str | None = None  # why not applicable
    reached: int = 0
    not_reached: int = 0
    share_reached: float | None = None
    p50_days: float | None = None
    p90_days: float | None = None
    mean_days: float | None = None
    histogram: Histogram | None = None


class FunnelStage(_Data):
    stage: str
    reached: int
    share: float  # of the cohort
    drop_off: int | None  # from the previous funnel stage (None for the first)
    drop_off_share: float | None  # drop_off / previous stage's reached
    in_template: bool  # a stage some step of the template enters


class Funnel(_Data):
    order: str
    stages: list[FunnelStage]
    final_stage: dict[str, int]
    final_status: dict[str, int]
    outcome: dict[str, int]  # outcome_reason ("-" when none)


class Count(_Data):
    total: int
    per_patient: float


class Messages(_Data):
    decisions: Count
    sent: Count
    deferred: Count
    suppressed: Count
    sent_by_channel: dict[str, Count]
    deferred_by_reason: dict[str, Count]
    suppressed_by_reason: dict[str, Count]


class RoleTasks(_Data):
    role: str
    tasks: int
    per_patient: float
    breached: int
    breach_share: float | None


class Tasks(_Data):
    total: RoleTasks  # role "all"
    by_role: list[RoleTasks]


class Adherence(_Data):
    tracked: bool
    rule: str
    measured: int = 0
    mean_pdc: float | None = None
    median_pdc: float | None = None
    share_adherent: float | None = None
    histogram: Histogram | None = None


class Cost(_Data):
    actions_per_patient_month: float
    history_events_per_journey: float
    history_bytes_per_journey: float
    calibration: str


class RunFacts(_Data):
    template: str
    scenario: str  # the scenario's name (or file name) when known, else its description
    scenario_description: str
    seed: str
    patients: int
    months: float
    patient_years: float
    seconds: float
    patient_years_per_second: float | None


class Report(_Data):
    kind: Literal["pitwall.simulation.report"] = "pitwall.simulation.report"
    run: RunFacts
    time_to_therapy: TimeToTherapy
    funnel: Funnel
    messages: Messages
    tasks: Tasks
    adherence: Adherence
    cost: Cost


class Delta(_Data):
    section: str
    metric: str
    unit: Unit
    a: float | None
    b: float | None
    absolute: float | None
    relative: float | None
    notable: bool


class Comparison(_Data):
    kind: Literal["pitwall.simulation.comparison"] = "pitwall.simulation.comparison"
    rule: str
    a: Report
    b: Report
    deltas: list[Delta]
    notes: list[str] = []  # what a reader must know to read the differences

    def notable(self) -> list[Delta]:
        return [d for d in self.deltas if d.notable]


# ------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def day_edges(values: Iterable[float]) -> list[float]:
    """Bin edges from 0 past the largest value, in the smallest width of DAY_WIDTHS that
    gives at most MAX_BINS bins."""
    top = max(values, default=0.0)
    for width in DAY_WIDTHS:
        if top / width <= MAX_BINS:
            break
    bins = max(1, math.ceil(top / width))
    if bins * width <= top and top > 0:
        bins += 1  # keep the largest value inside a bin
    return [float(i * width) for i in range(bins + 1)]


def histogram(values: Iterable[float], edges: Sequence[float]) -> Histogram:
    counts = [0] * (len(edges) - 1)
    for v in values:
        if v < edges[0] or v > edges[-1]:
            continue
        i = next((k for k in range(len(counts)) if v < edges[k + 1]), len(counts) - 1)
        counts[i] += 1
    return Histogram(edges=list(edges), counts=counts)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------------ time to therapy


def _template_stages(template: JourneyTemplate | None) -> list[str]:
    if template is None:
        return []
    seen: dict[str, None] = {}
    for step in template.all_steps():
        if step.stage:
            seen.setdefault(step.stage)
    return list(seen)


def _template_milestones(template: JourneyTemplate | None) -> set[str]:
    if template is None:
        return set()
    return {step.milestone for step in template.all_steps() if step.milestone}


def therapy_day(patient: PatientResult, marker: tuple[str, tuple[str, ...]]) -> float | None:
    """The day this patient reached therapy by the marker (None: not within the horizon)."""
    kind, names = marker
    if kind == "milestone":
        return patient.milestones.get(names[0])
    days = [day for stage, day in patient.stages if stage in names]
    return min(days) if days else None


def therapy_marker(
    cohort: Cohort, template: JourneyTemplate | None
) -> tuple[str, tuple[str, ...]] | None:
    milestones = _template_milestones(template)
    for p in cohort.patients:
        milestones.update(p.milestones)
    for name in THERAPY_MILESTONES:
        if name in milestones:
            return ("milestone", (name,))
    stages = set(_template_stages(template)) | {s for p in cohort.patients for s, _ in p.stages}
    if stages & set(THERAPY_STAGES):
        return ("stage", THERAPY_STAGES)
    return None


def _starts_on_therapy(cohort: Cohort, template: JourneyTemplate | None) -> bool:
    if template is not None:
        return template.steps[0].stage in THERAPY_STAGES
    firsts = [p.stages[0] for p in cohort.patients if p.stages]
    return bool(firsts) and all(s in THERAPY_STAGES and d == 0 for s, d in firsts)


def time_to_therapy(
    cohort: Cohort, template: JourneyTemplate | None, edges: Sequence[float] | None = None
) -> TimeToTherapy:
    marker = therapy_marker(cohort, template)
    if marker is None:
        return TimeToTherapy(
            applicable=False, rule="no therapy milestone or stage",
            reason="the template has no first_dose_confirmed or delivered milestone and no "
            f"{', '.join(THERAPY_STAGES)} stage",
        )  # fmt: skip
    kind, names = marker
    rule = f"milestone {names[0]}" if kind == "milestone" else (
        f"first entry into stage {', '.join(names[:-1])} or {names[-1]}"
    )  # fmt: skip
    if kind == "stage" and _starts_on_therapy(cohort, template):
        return TimeToTherapy(
            applicable=False, rule=rule,
            reason="the journey starts on therapy, its first step entering a therapy stage",
        )  # fmt: skip
    days = [d for d in (therapy_day(p, marker) for p in cohort.patients) if d is not None]
    n = len(cohort.patients)
    return TimeToTherapy(
        applicable=True,
        rule=rule,
        reached=len(days),
        not_reached=n - len(days),
        share_reached=_round(_share(len(days), n)),
        p50_days=_round(percentile(days, 0.5), 2),
        p90_days=_round(percentile(days, 0.9), 2),
        mean_days=_round(sum(days) / len(days), 2) if days else None,
        histogram=histogram(days, edges if edges is not None else day_edges(days)),
    )


def therapy_days(cohort: Cohort, template: JourneyTemplate | None) -> list[float]:
    """The days to therapy of the patients who reached it (for shared histogram bins)."""
    marker = therapy_marker(cohort, template)
    if marker is None:
        return []
    return [d for d in (therapy_day(p, marker) for p in cohort.patients) if d is not None]


# ------------------------------------------------------------------------ funnel


def funnel(cohort: Cohort, template: JourneyTemplate | None) -> Funnel:
    n = len(cohort.patients)
    reached: Counter[str] = Counter()
    first_days: dict[str, list[float]] = {}
    for p in cohort.patients:
        firsts: dict[str, float] = {}
        for stage, day in p.stages:
            firsts.setdefault(stage, day)
        reached.update(firsts.keys())
        for stage, day in firsts.items():
            first_days.setdefault(stage, []).append(day)
    declared = _template_stages(template)
    in_template = [s for s in declared if s in reached]
    others = sorted(
        (s for s in reached if s not in declared),
        key=lambda s: (sum(first_days[s]) / len(first_days[s]), s),
    )
    order = (
        "template order, then stages entered by the steps themselves by mean first day"
        if template is not None
        else "by the mean day patients first entered each stage"
    )
    stages: list[FunnelStage] = []
    previous: int | None = None
    for stage in in_template + others:
        count = reached[stage]
        drop = None if previous is None else previous - count
        stages.append(
            FunnelStage(
                stage=stage, reached=count, share=round(count / n, 4) if n else 0.0,
                drop_off=drop,
                drop_off_share=None if previous is None else _round(_share(drop or 0, previous)),
                in_template=stage in declared,
            )
        )  # fmt: skip
        previous = count
    return Funnel(
        order=order,
        stages=stages,
        final_stage=dict(Counter(p.stage for p in cohort.patients).most_common()),
        final_status=dict(Counter(p.status for p in cohort.patients).most_common()),
        outcome=dict(Counter(p.outcome_reason or "-" for p in cohort.patients).most_common()),
    )


# ------------------------------------------------------------------------ messages, tasks


def _count(total: int, n: int) -> Count:
    return Count(total=total, per_patient=round(total / n, 4) if n else 0.0)


def messages(cohort: Cohort) -> Messages:
    n = len(cohort.patients)
    decisions = [d for p in cohort.patients for d in p.decisions]
    by: dict[str, Counter[str]] = {"send": Counter(), "defer": Counter(), "suppress": Counter()}
    for d in decisions:
        key = (d.channel if d.action == "send" else d.reason) or "-"
        by.setdefault(d.action, Counter())[key] += 1

    def counts(c: Counter[str]) -> dict[str, Count]:
        return {k: _count(v, n) for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))}

    return Messages(
        decisions=_count(len(decisions), n),
        sent=_count(sum(by["send"].values()), n),
        deferred=_count(sum(by["defer"].values()), n),
        suppressed=_count(sum(by["suppress"].values()), n),
        sent_by_channel=counts(by["send"]),
        deferred_by_reason=counts(by["defer"]),
        suppressed_by_reason=counts(by["suppress"]),
    )


def tasks(cohort: Cohort) -> Tasks:
    n = len(cohort.patients)
    records = [t for p in cohort.patients for t in p.task_records]
    opened = Counter(t.role for t in records)
    breached = Counter(t.role for t in records if t.escalated)

    def line(role: str, count: int, breaches: int) -> RoleTasks:
        return RoleTasks(
            role=role, tasks=count, per_patient=round(count / n, 4) if n else 0.0,
            breached=breaches, breach_share=_round(_share(breaches, count)),
        )  # fmt: skip

    return Tasks(
        total=line("all", len(records), sum(breached.values())),
        by_role=[line(r, c, breached[r]) for r, c in sorted(opened.items(), key=lambda x: -x[1])],
    )


# ------------------------------------------------------------------------ adherence


def adherence(cohort: Cohort) -> Adherence:
    rule = (
        "one PDC per patient: the latest measurement year closed within the horizon, else "
        f"the open year to date; adherent when PDC >= {ADHERENT_PDC}"
    )
    values = [v for v in (p.pdc for p in cohort.patients) if v is not None]
    if not values:
        return Adherence(tracked=False, rule="the template does not track adherence (no PDC)")
    return Adherence(
        tracked=True,
        rule=rule,
        measured=len(values),
        mean_pdc=_round(sum(values) / len(values)),
        median_pdc=_round(percentile(values, 0.5)),
        share_adherent=_round(sum(v >= ADHERENT_PDC for v in values) / len(values)),
        histogram=histogram(values, PDC_EDGES),
    )


# ------------------------------------------------------------------------ report


def run_facts(cohort: Cohort, scenario_name: str | None = None) -> RunFacts:
    years = cohort.patient_years
    return RunFacts(
        template=cohort.template,
        scenario=scenario_name or cohort.scenario or "-",
        scenario_description=cohort.scenario,
        seed=cohort.seed,
        patients=len(cohort.patients),
        months=cohort.months,
        patient_years=round(years, 4),
        seconds=round(cohort.seconds, 3),
        patient_years_per_second=round(years / cohort.seconds, 3) if cohort.seconds else None,
    )


def build_report(
    cohort: Cohort,
    template: JourneyTemplate | None = None,
    *,
    scenario_name: str | None = None,
    therapy_edges: Sequence[float] | None = None,
) -> Report:
    """The report of one cohort; `template` (the one it ran) orders the funnel and says
    which milestones and stages it has; `therapy_edges` fixes the histogram's bins."""
    cost = estimate(cohort)
    return Report(
        run=run_facts(cohort, scenario_name),
        time_to_therapy=time_to_therapy(cohort, template, therapy_edges),
        funnel=funnel(cohort, template),
        messages=messages(cohort),
        tasks=tasks(cohort),
        adherence=adherence(cohort),
        cost=Cost(
            actions_per_patient_month=round(cost.actions_per_patient_month, 4),
            history_events_per_journey=round(cost.history_events_per_journey, 2),
            history_bytes_per_journey=round(cost.history_bytes_per_journey, 1),
            calibration=cost.calibration,
        ),
    )


# ------------------------------------------------------------------------ comparison

RELATIVE_THRESHOLD = 0.10
# The smallest absolute difference worth a flag, by unit.
FLOORS: dict[str, float] = {
    "days": 1.0,
    "share": 0.05,
    "per_patient": 0.1,
    "per_patient_month": 0.1,
    "bytes": 1024.0,
    "events": 1.0,
}
NOTABLE_RULE = (
    "A difference is notable when it is at least 10% of the first value and at least a "
    "floor in its own unit (1 day; 0.1 per patient or per patient-month; 1 history event; "
    "1 KiB); a share (0..1) is notable when it moves by 5 percentage points or more, "
    "whatever its relative change. Run time and throughput are never flagged (they measure "
    "the machine). Both cohorts are the same sampled patients, so a difference comes "
    "from the templates or scenarios, not from sampling; still, with few patients a "
    "single patient moves a share by 1/N."
)

NOTABLE_SHORT = (
    "|Δ| ≥ 10% and ≥ 1 d / 0.1 per patient / 1 event / 1 KiB; shares: ≥ 5 percentage points"
)


def is_notable(unit: str, a: float | None, b: float | None) -> bool:
    floor = FLOORS.get(unit)
    if floor is None or a is None or b is None:
        return False
    absolute = abs(b - a)
    if absolute < floor - 1e-12:
        return False
    if unit == "share":
        return True
    return a == 0 or absolute / abs(a) >= RELATIVE_THRESHOLD - 1e-12


def _metrics(report: Report) -> list[tuple[str, str, Unit, float | None]]:
    """Every comparable number of a report: (section, metric, unit, value)."""
    out: list[tuple[str, str, Unit, float | None]] = []
    t = report.time_to_therapy
    if t.applicable:
        out += [
            ("time to therapy", "p50", "days", t.p50_days),
            ("time to therapy", "p90", "days", t.p90_days),
            ("time to therapy", "share reached", "share", t.share_reached),
        ]
    for stage in report.funnel.stages:
        out.append(("funnel", f"reached {stage.stage}", "share", stage.share))
    n = report.run.patients or 1
    for name, count in report.funnel.final_stage.items():
        out.append(("outcome", f"final stage {name}", "share", count / n))
    for status, count in report.funnel.final_status.items():
        out.append(("outcome", f"status {status}", "share", count / n))
    for reason, count in report.funnel.outcome.items():
        out.append(("outcome", f"outcome {reason}", "share", count / n))
    m = report.messages
    out += [
        ("messages", "sent", "per_patient", m.sent.per_patient),
        ("messages", "deferred", "per_patient", m.deferred.per_patient),
        ("messages", "suppressed", "per_patient", m.suppressed.per_patient),
    ]
    out += [("messages", f"sent {k}", "per_patient", c.per_patient)
            for k, c in m.sent_by_channel.items()]  # fmt: skip
    out += [("messages", f"deferred {k}", "per_patient", c.per_patient)
            for k, c in m.deferred_by_reason.items()]  # fmt: skip
    out += [("messages", f"suppressed {k}", "per_patient", c.per_patient)
            for k, c in m.suppressed_by_reason.items()]  # fmt: skip
    for role in [report.tasks.total, *report.tasks.by_role]:
        out.append(("tasks", f"{role.role} tasks", "per_patient", role.per_patient))
        out.append(("tasks", f"{role.role} SLA breach share", "share", role.breach_share))
    a = report.adherence
    if a.tracked:
        out += [
            ("adherence", "share adherent", "share", a.share_adherent),
            ("adherence", "mean PDC", "share", a.mean_pdc),
        ]
    c = report.cost
    out += [
        ("cost", "actions per patient-month", "per_patient_month", c.actions_per_patient_month),
        ("cost", "history events per journey", "events", c.history_events_per_journey),
        ("cost", "history bytes per journey", "bytes", c.history_bytes_per_journey),
        ("run", "seconds", "seconds", report.run.seconds),
        ("run", "patient-years per second", "rate", report.run.patient_years_per_second),
    ]
    return out


# Values a metric takes when the other report has it and this one does not.
_ABSENT_IS_ZERO = {"funnel", "outcome", "messages"}


def compare(a: Report, b: Report) -> Comparison:
    """Two reports side by side: b against a, each difference flagged by NOTABLE_RULE."""
    left = {(s, m): (u, v) for s, m, u, v in _metrics(a)}
    right = {(s, m): (u, v) for s, m, u, v in _metrics(b)}
    keys = list(left) + [k for k in right if k not in left]
    deltas = []
    for key in keys:
        unit = (left.get(key) or right[key])[0]
        absent = 0.0 if key[0] in _ABSENT_IS_ZERO or key[1].endswith(" tasks") else None
        va = left[key][1] if key in left else absent
        vb = right[key][1] if key in right else absent
        absolute = None if va is None or vb is None else vb - va
        relative = None if absolute is None or not va else absolute / abs(va)
        deltas.append(
            Delta(
                section=key[0], metric=key[1], unit=unit, a=_round(va), b=_round(vb),
                absolute=_round(absolute), relative=_round(relative),
                notable=is_notable(unit, va, vb),
            )
        )  # fmt: skip
    notes = []
    ta, tb = a.time_to_therapy, b.time_to_therapy
    if ta.applicable and tb.applicable and ta.rule != tb.rule:
        notes.append(
            f"Time to therapy is measured differently: A by the {ta.rule}, B by the {tb.rule}."
        )
    if a.run.months != b.run.months or a.run.patients != b.run.patients:
        notes.append("The two runs differ in cohort size or horizon: compare per-patient values.")
    return Comparison(rule=NOTABLE_RULE, a=a, b=b, deltas=deltas, notes=notes)


def build_comparison(
    a: Cohort,
    b: Cohort,
    template_a: JourneyTemplate | None = None,
    template_b: JourneyTemplate | None = None,
    *,
    scenario_a: str | None = None,
    scenario_b: str | None = None,
) -> Comparison:
    """Both cohorts' reports, their time-to-therapy histograms on the same bins."""
    edges = day_edges(therapy_days(a, template_a) + therapy_days(b, template_b))
    return compare(
        build_report(a, template_a, scenario_name=scenario_a, therapy_edges=edges),
        build_report(b, template_b, scenario_name=scenario_b, therapy_edges=edges),
    )


# ------------------------------------------------------------------------ formatting


def fmt(value: float | None, unit: str) -> str:
    """A value for people: 12.5 d, 95.0%, 3.30 per patient, 64.4 KiB."""
    if value is None:
        return "n/a"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "share":
        return f"{100 * value:.1f}%"
    if unit == "bytes":
        return f"{value / 1024:.1f} KiB"
    if unit == "seconds":
        return f"{value:.2f} s"
    if unit == "rate":
        return f"{value:.1f} py/s"
    return f"{value:.2f}"


def fmt_delta(delta: Delta) -> tuple[str, str]:
    """(absolute, relative) differences for people: +5.0 pp, +1.2 d, +10.0%."""
    if delta.absolute is None:
        return "n/a", "n/a"
    a = delta.absolute
    if delta.unit == "share":
        absolute = f"{100 * a:+.1f} pp"
    elif delta.unit == "bytes":
        absolute = f"{a / 1024:+.1f} KiB"
    elif delta.unit == "days":
        absolute = f"{a:+.1f} d"
    else:
        absolute = f"{a:+.2f}"
    relative = "n/a" if delta.relative is None else f"{100 * delta.relative:+.1f}%"
    return absolute, relative
