"""The simulation report answers a program manager's questions right: how long patients
take to start therapy, where they drop out, what they were sent, what landed on people and
how often it breached its SLA, adherence, cost; and a comparison flags what really moved.

Hub-like data (the specialty_start journey has no partner script yet) is hand-built
against the real specialty_start templates; refill data comes from the simulator."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

import pytest

from domain.template_loader import get_template
from simulate.cohort import Cohort, ContactRecord, PatientResult, TaskRecord, run_cohort
from simulate.cohort_scenario import load_scenario
from simulate.report import (
    Comparison,
    Report,
    build_comparison,
    build_report,
    compare,
    percentile,
)
from simulate.report_html import to_html

HUB_V2 = get_template("specialty_start", version=2)
HUB_V1 = get_template("specialty_start", version=1)
REFILLS = get_template("refill_adherence")


def patient(
    index: int,
    *,
    stages: Sequence[tuple[str, float]] = (),
    milestones: dict[str, float] | None = None,
    decisions: Sequence[ContactRecord] = (),
    tasks: Sequence[TaskRecord] = (),
    pdc: float | None = None,
    status: str = "completed",
    outcome: str | None = None,
    template: str = "specialty_start@2",
) -> PatientResult:
    return PatientResult(
        index=index, template=template, status=status,
        stage=stages[-1][0] if stages else "REFERRED", outcome_reason=outcome, steps=[],
        stages=list(stages), milestones=milestones or {}, decisions=list(decisions),
        task_records=list(tasks), pdc_by_year={}, pdc_year_to_date=pdc, risk_level=None,
        at_risk_episodes=0, cost=Counter(activity=10, timer=5), days=180.0,
    )  # fmt: skip


def cohort(patients: list[PatientResult], template: str = "specialty_start@2") -> Cohort:
    return Cohort(template=template, scenario="hand-built", seed="0", patients=patients,
                  months=6, seconds=1.0)  # fmt: skip


def send(channel: str) -> ContactRecord:
    return ContactRecord(day=1, step_id="s", attempt=0, action="send", channel=channel,
                         reason=None)  # fmt: skip


def held(action: str, reason: str) -> ContactRecord:
    return ContactRecord(day=1, step_id="s", attempt=0, action=action, channel=None,
                         reason=reason)  # fmt: skip


def task(role: str, breached: bool) -> TaskRecord:
    return TaskRecord(task_id=f"t-{role}", step_id="s", role=role, opened_day=1, due_day=2,
                      closed_day=3, closed_as="completed", escalated=breached)  # fmt: skip


def hub_cohort(therapy_days: Sequence[float | None]) -> Cohort:
    """One patient per entry: first dose confirmed that day, or never (None)."""
    return cohort([
        patient(i, stages=[("REFERRED", 0.0)] + ([("ONBOARDED", d)] if d is not None else []),
                milestones={"referral_received": 0.0} | ({} if d is None else
                                                         {"first_dose_confirmed": d}))
        for i, d in enumerate(therapy_days)
    ])  # fmt: skip


# ------------------------------------------------------------------------ time to therapy


def test_time_to_therapy_percentiles_over_the_patients_who_started() -> None:
    days: list[float | None] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, None, None]
    t = build_report(hub_cohort(days), HUB_V2).time_to_therapy
    assert t.applicable and t.rule == "milestone first_dose_confirmed"
    # Linear interpolation over the 10 who reached it: p50 halfway 50..60, p90 0.1 of 90..100.
    assert (t.p50_days, t.p90_days, t.mean_days) == (55.0, 91.0, 55.0)
    assert (t.reached, t.not_reached, t.share_reached) == (10, 2, round(10 / 12, 4))
    assert t.histogram is not None and sum(t.histogram.counts) == 10
    assert t.histogram.edges[0] == 0 and t.histogram.edges[-1] > 100
    assert percentile([], 0.5) is None and percentile([7], 0.9) == 7


def test_without_first_dose_the_marker_is_delivered_then_a_therapy_stage() -> None:
    delivered = cohort([patient(0, stages=[("SHIPPED", 3)], milestones={"delivered": 12})])
    assert build_report(delivered).time_to_therapy.rule == "milestone delivered"
    assert build_report(delivered).time_to_therapy.p50_days == 12
    # specialty_start v1 has no milestones: the first entry into DELIVERED or ON_THERAPY.
    v1 = cohort(
        [patient(0, stages=[("CONSENT_PENDING", 0), ("DELIVERED", 20), ("ON_THERAPY", 25)]),
         patient(1, stages=[("CONSENT_PENDING", 0), ("ON_THERAPY", 40)]),
         patient(2, stages=[("CONSENT_PENDING", 0), ("APPEAL_DENIED", 30)])],
        template="specialty_start@1",
    )  # fmt: skip
    t = build_report(v1, HUB_V1).time_to_therapy
    assert t.rule.startswith("first entry into stage DELIVERED")
    assert (t.reached, t.p50_days) == (2, 30.0)  # days 20 and 40


def test_a_journey_that_starts_on_therapy_has_no_time_to_therapy_rather_than_zero() -> None:
    refills = cohort([patient(0, stages=[("ON_THERAPY", 0)], template="refill_adherence@1")],
                     template="refill_adherence@1")  # fmt: skip
    for template in (REFILLS, None):  # from the template, or from the data alone
        t = build_report(refills, template).time_to_therapy
        assert not t.applicable and t.p50_days is None
        assert "starts on therapy" in (t.reason or "")


# ------------------------------------------------------------------------ funnel


def test_the_funnel_counts_each_stage_once_per_patient_in_template_order() -> None:
    path = ["REFERRED", "CONSENT_PENDING", "BV_IN_PROGRESS", "PA_SUBMITTED", "DELIVERED",
            "ONBOARDED"]  # fmt: skip
    depth = [6, 6, 5, 4, 3, 3, 2, 1, 1, 1]  # how far each of 10 patients got
    patients = []
    for i, d in enumerate(depth):
        stages = [(stage, float(k * 10)) for k, stage in enumerate(path[:d])]
        if d >= 3:  # back to benefits verification: entering a stage twice counts once
            stages.insert(3, ("BV_IN_PROGRESS", 25.0))
        patients.append(patient(i, stages=stages))
    f = build_report(cohort(patients), HUB_V2).funnel
    assert [(s.stage, s.reached) for s in f.stages] == [
        ("REFERRED", 10), ("CONSENT_PENDING", 7), ("BV_IN_PROGRESS", 6), ("PA_SUBMITTED", 4),
        ("DELIVERED", 3), ("ONBOARDED", 2),
    ]  # fmt: skip
    assert [s.drop_off for s in f.stages] == [None, 3, 1, 2, 1, 1]
    assert [s.drop_off_share for s in f.stages] == [
        None, 0.3, round(1 / 7, 4), round(2 / 6, 4), 0.25, round(1 / 3, 4)]  # fmt: skip
    assert f.stages[-1].share == 0.2
    assert sum(f.final_stage.values()) == 10 and f.final_stage["ONBOARDED"] == 2


def test_without_a_template_stages_are_ordered_by_when_patients_first_reached_them() -> None:
    patients = [patient(0, stages=[("B", 5), ("A", 9)]), patient(1, stages=[("B", 1), ("C", 3)])]
    f = build_report(cohort(patients)).funnel
    assert [s.stage for s in f.stages] == ["B", "C", "A"]  # mean first days 3, 3 (C), 9
    # Stages a template's steps enter on their own come after the template's.
    refill = cohort(
        [patient(0, stages=[("ON_THERAPY", 0), ("DISCONTINUED", 80)]),
         patient(1, stages=[("ON_THERAPY", 0), ("AT_RISK", 30)])],
        template="refill_adherence@1",
    )  # fmt: skip
    stages = build_report(refill, REFILLS).funnel.stages
    assert [(s.stage, s.in_template) for s in stages] == [
        ("ON_THERAPY", True), ("AT_RISK", False), ("DISCONTINUED", False)]  # fmt: skip


# ------------------------------------------------------------------------ messages, tasks


def test_messages_by_channel_and_decision_and_tasks_breaches_by_role() -> None:
    patients = [
        patient(0, decisions=[send("sms"), send("sms"), held("defer", "quiet_hours")],
                tasks=[task("nurse_educator", True), task("nurse_educator", False)]),
        patient(1, decisions=[send("email"), send("sms"), held("defer", "quiet_hours"),
                              held("suppress", "opted_out")],
                tasks=[task("nurse_educator", False), task("reimbursement_specialist", True)]),
    ]  # fmt: skip
    r = build_report(cohort(patients))
    m = r.messages
    assert (m.sent.total, m.deferred.total, m.suppressed.total, m.decisions.total) == (4, 2, 1, 7)
    assert m.sent.per_patient == 2.0
    assert {k: c.total for k, c in m.sent_by_channel.items()} == {"sms": 3, "email": 1}
    assert m.deferred_by_reason["quiet_hours"].per_patient == 1.0
    assert m.suppressed_by_reason["opted_out"].total == 1
    roles = {t.role: t for t in r.tasks.by_role}
    nurse = roles["nurse_educator"]
    assert (nurse.tasks, nurse.breached, nurse.breach_share, nurse.per_patient) == (
        3, 1, round(1 / 3, 4), 1.5)  # fmt: skip
    assert roles["reimbursement_specialist"].breach_share == 1.0
    assert (r.tasks.total.tasks, r.tasks.total.breached, r.tasks.total.breach_share) == (4, 2, 0.5)


def test_adherence_only_where_the_template_tracks_it() -> None:
    hub = build_report(hub_cohort([10, 20]), HUB_V2)
    assert not hub.adherence.tracked and hub.adherence.share_adherent is None
    refill = cohort([patient(i, pdc=v) for i, v in enumerate([0.5, 0.79, 0.8, 0.95])])
    a = build_report(refill).adherence
    assert a.tracked and a.share_adherent == 0.5 and a.measured == 4  # 0.8 counts as adherent
    assert a.histogram is not None and a.histogram.counts[8] == 1 and a.histogram.counts[9] == 1


@pytest.fixture(scope="module")
def refill_cohorts() -> tuple[Cohort, Cohort]:
    typical = run_cohort(REFILLS, load_scenario("typical"), patients=16, months=12, seed=5)
    risky = run_cohort(REFILLS, load_scenario("adherence_risk"), patients=16, months=12, seed=5)
    return typical, risky


def test_a_simulated_refill_cohort_reports_what_the_cohort_holds(
    refill_cohorts: tuple[Cohort, Cohort],
) -> None:
    typical, _ = refill_cohorts
    r = build_report(typical, REFILLS, scenario_name="typical")
    assert r.run.patients == 16 and r.run.patient_years == 16 and r.run.scenario == "typical"
    assert not r.time_to_therapy.applicable
    assert r.messages.sent_by_channel["sms"].total == typical.contacts()["send:sms"]
    assert {t.role: t.tasks for t in r.tasks.by_role} == dict(typical.tasks())
    assert r.adherence.tracked and r.adherence.measured == 16
    assert r.cost.actions_per_patient_month > 0 and r.cost.calibration
    assert r.funnel.stages[0].stage == "ON_THERAPY" and r.funnel.stages[0].reached == 16


# ------------------------------------------------------------------------ comparison


def test_compare_flags_a_real_difference_and_not_noise() -> None:
    base = [float(d) for d in range(20, 120)]  # 100 patients, p50 69.5 d
    noise: list[float | None] = list(base)
    noise[0], noise[99] = 21.0, None  # one patient a day later, one never: 1% of the cohort
    slower = [d * 1.3 for d in base]
    a = build_report(hub_cohort(base), HUB_V2)
    quiet = compare(a, build_report(hub_cohort(noise), HUB_V2))
    assert quiet.notable() == []
    real = compare(a, build_report(hub_cohort(slower), HUB_V2))
    flagged = {(d.section, d.metric) for d in real.notable()}
    assert ("time to therapy", "p50") in flagged and ("time to therapy", "p90") in flagged
    assert ("time to therapy", "share reached") not in flagged  # everybody still got there
    p50 = next(d for d in real.deltas if d.metric == "p50")
    assert p50.relative == pytest.approx(0.3, abs=0.01)


def test_compare_shares_move_by_percentage_points_not_relative_change() -> None:
    def breaches(n: int) -> Cohort:  # 100 nurse tasks, n of them past their SLA
        return cohort([patient(i, tasks=[task("nurse_educator", i < n)]) for i in range(100)])

    a = build_report(breaches(2))
    small = compare(a, build_report(breaches(4)))  # +100% relative, but 2 points
    big = compare(a, build_report(breaches(12)))  # +10 points
    assert not any("breach" in d.metric and d.notable for d in small.deltas)
    assert any(d.metric == "nurse_educator SLA breach share" and d.notable for d in big.deltas)


def test_comparing_the_same_patients_through_the_same_template_flags_nothing(
    refill_cohorts: tuple[Cohort, Cohort],
) -> None:
    typical, risky = refill_cohorts
    again = run_cohort(REFILLS, load_scenario("typical"), patients=16, months=12, seed=5)
    same = build_comparison(typical, again, REFILLS, REFILLS)
    assert same.notable() == []
    assert all(d.absolute == 0 for d in same.deltas if d.section != "run")
    differ = build_comparison(typical, risky, REFILLS, REFILLS, scenario_b="adherence_risk")
    flagged = {d.metric for d in differ.notable()}
    assert "share adherent" in flagged and "reached DISCONTINUED" in flagged
    assert not any(d.section == "run" for d in differ.notable())  # machine timing never is


# ------------------------------------------------------------------------ output


def test_json_round_trips(refill_cohorts: tuple[Cohort, Cohort]) -> None:
    typical, risky = refill_cohorts
    report = build_report(typical, REFILLS)
    assert Report.model_validate_json(report.model_dump_json()) == report
    comparison = build_comparison(typical, risky, REFILLS, REFILLS)
    text = comparison.model_dump_json()
    assert Comparison.model_validate_json(text) == comparison
    assert json.loads(text)["kind"] == "pitwall.simulation.comparison"
    hub = build_report(hub_cohort([10, None]), HUB_V2)
    assert Report.model_validate(json.loads(hub.model_dump_json())) == hub


def test_the_html_is_self_contained_names_the_run_and_holds_no_patient_data(
    refill_cohorts: tuple[Cohort, Cohort],
) -> None:
    typical, risky = refill_cohorts
    single = to_html(build_report(typical, REFILLS, scenario_name="typical"))
    both = to_html(build_comparison(typical, risky, REFILLS, REFILLS, scenario_a="typical",
                                    scenario_b="adherence_risk"))  # fmt: skip
    for page in (single, both):
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
        assert "<script" not in page.lower() and "<link" not in page.lower()
        assert "url(" not in page and "@import" not in page
        assert page.count('src="data:image/png;base64,') >= 4  # funnel, messages, tasks, PDC
        assert "refill_adherence@1" in page and "typical" in page
        assert "pt-sim" not in page  # the simulator's patient refs
    assert "adherence_risk" in both and "Notable differences" in both


def test_the_html_escapes_text_and_shows_days_only_as_aggregates() -> None:
    days: list[float | None] = [10, 20, 123.456789, 30, 40]
    sample = hub_cohort(days)
    sample.scenario = "<script>alert('x')</script> & co"
    report = build_report(sample, HUB_V2)
    page = to_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "123.45" not in page and "123.45" not in report.model_dump_json()
    # Time to therapy and the funnel; no messages, tasks or PDC to draw.
    assert page.count('src="data:image/png;base64,') == 2
    assert "Time to therapy" in page and "specialty_start@2" in page


def test_compare_says_when_the_two_templates_measure_therapy_differently() -> None:
    v1 = cohort([patient(0, stages=[("CONSENT_PENDING", 0), ("DELIVERED", 20)])],
                template="specialty_start@1")  # fmt: skip
    v2 = hub_cohort([25.0])
    comparison = compare(build_report(v1, HUB_V1), build_report(v2, HUB_V2))
    assert any("measured differently" in note for note in comparison.notes)
    p50 = next(d for d in comparison.deltas if d.metric == "p50")
    assert (p50.a, p50.b, p50.absolute) == (20.0, 25.0, 5.0)
    assert "measured differently" in to_html(comparison)
    # Where journeys stopped: DELIVERED for A's patient, ONBOARDED for B's.
    ended = {d.metric: (d.a, d.b) for d in comparison.deltas if d.section == "outcome"}
    assert ended["final stage DELIVERED"] == (1.0, 0.0)
    assert ended["final stage ONBOARDED"] == (0.0, 1.0)
