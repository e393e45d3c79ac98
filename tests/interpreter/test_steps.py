"""Every step kind, and their error paths, on a virtual clock: no Temporal server.

The interpreter here is the production one (the workflow runs the very same code); only
the runtime differs (simulate/runtime.py). A journey-year takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.template_loader import get_template
from simulate.runtime import Stuck, VirtualRuntime
from tests.interpreter.conftest import T0, event, simulate, template
from tests.workflows.fakes import APPROVING
from workflows.runtime import ActionFailed

DAY = timedelta(days=1)


def held_then_retry(
    step: str, reasons: list[str | None], most: int = 3
) -> Callable[[VirtualRuntime], bool]:
    """on_idle: record why the journey is held, then send the operator's retry."""

    def on_idle(rt: VirtualRuntime) -> bool:
        if not rt.state.needs_attention or rt.state.pending_wait is None or len(reasons) >= most:
            return False
        reasons.append(rt.state.attention_reason)
        rt.receive(event("operator.retry", step, event_id=f"retry-{len(reasons)}"))
        return True

    return on_idle


def fixed_then_retried(reasons: list[str | None]) -> Callable[[VirtualRuntime], None]:
    """The payer is fixed while the journey is held, then the operator retries."""

    def setup(rt: VirtualRuntime) -> None:
        def on_idle(rt: VirtualRuntime) -> bool:
            rt.answers["payer.verify_benefits"] = {"coverage_active": True, "pa_required": False}
            return held_then_retry("benefits", reasons)(rt)

        rt.on_idle = on_idle

    return setup


# -- a whole template ---------------------------------------------------------------------


async def test_specialty_start_runs_to_the_refill_reminder_on_a_virtual_clock() -> None:
    sim = await simulate(
        get_template("specialty_start", version=1),
        APPROVING,
        events=[
            (DAY, event("consent.signed", "CR-1")),
            (3 * DAY, event("pharmacy.shipped", "RX-1")),
            (4 * DAY, event("pharmacy.delivered", "RX-1")),
        ],
    )
    state, rt = sim.state, sim.runtime
    assert (state.status, state.outcome_reason) == ("completed", "first_refill_reminded")
    assert [c.action for c in rt.calls] == [
        "consent.request", "payer.verify_benefits", "payer.submit_prior_auth", "pharmacy.refer",
    ]  # fmt: skip
    assert [m.step_id for m in rt.contacts] == ["welcome", "refill_reminder"]
    reminded = next(r for r in state.completed_steps if r.step_id == "refill_due").finished_at
    assert reminded is not None
    # 28 days supply, 7 days lead: 21 days after delivery, at 10:00 in New York.
    assert reminded - (T0 + 4 * DAY) >= timedelta(days=21)
    assert reminded.astimezone(ZoneInfo("America/New_York")).hour == 10
    assert state.steps_completed == len(state.completed_steps) == 14
    assert [n.summary for n in rt.notes if n.kind == "journey.milestone"][:2] == [
        "stage CONSENT_PENDING", "stage BV_IN_PROGRESS",
    ]  # fmt: skip


# -- partner_action -------------------------------------------------------------------------

ONE_ACTION = """
id: one_action
version: 1
parameters: {drug_code: "99999-0001-01"}
steps:
  - id: benefits
    kind: partner_action
    action: payer.verify_benefits
    on_error: {payer.not_covered: not_covered}
  - id: done
    kind: exit
  - id: not_covered
    kind: exit
    outcome: abandoned
    reason: not_covered
"""


async def test_partner_rejection_goes_where_on_error_says() -> None:
    sim = await simulate(
        template(ONE_ACTION), {"payer.verify_benefits": ActionFailed("payer.not_covered")}
    )
    assert (sim.state.status, sim.state.outcome_reason) == ("abandoned", "not_covered")
    assert sim.state.outputs["benefits"] == {"error": "payer.not_covered"}


async def test_unplanned_rejection_holds_for_an_operator_then_retries_with_a_new_key() -> None:
    answers: dict[str, object] = {"payer.verify_benefits": ActionFailed("payer.invalid_request")}
    reasons: list[str | None] = []
    sim = await simulate(template(ONE_ACTION), answers, setup=fixed_then_retried(reasons))
    assert reasons == ["benefits: payer.invalid_request"]
    assert sim.state.status == "completed" and not sim.state.needs_attention
    keys = [c.idempotency_key for c in sim.runtime.calls]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert [n.kind for n in sim.runtime.notes].count("journey.held") == 1


async def test_partner_down_past_the_retries_holds_and_retries_with_the_same_key() -> None:
    down = ActionFailed("partner.unavailable", "payer unavailable (503)")
    reasons: list[str | None] = []
    setup = fixed_then_retried(reasons)
    # `*` would catch any partner error, but an outage is never routed there: it is held.
    tpl = template(ONE_ACTION.replace("{payer.not_covered: not_covered}", "{'*': not_covered}"))
    sim = await simulate(tpl, {"payer.verify_benefits": down}, setup=setup)
    assert reasons == ["benefits: partner.unavailable: payer unavailable (503)"]
    assert sim.state.status == "completed"
    keys = [c.idempotency_key for c in sim.runtime.calls]
    assert len(keys) == 2 and len(set(keys)) == 1  # the first request may have landed


async def test_a_request_that_cannot_be_built_is_held_without_calling_the_partner() -> None:
    tpl = template(
        ONE_ACTION.replace(
            "action: payer.verify_benefits",
            "action: payer.verify_benefits\n    inputs: {drug_code: context.ndc}",
        )
    )
    reasons: list[str | None] = []

    def setup(rt: VirtualRuntime) -> None:
        rt.on_idle = held_then_retry("benefits", reasons)

    with pytest.raises(Stuck):  # still no ndc after the retry: held again, nobody answers
        await simulate(tpl, APPROVING, setup=setup, context={})
    assert reasons[0] == (
        "benefits: request.invalid: payer.verify_benefits input(s) drug_code missing or invalid"
    )
    assert len(reasons) >= 2  # held again after the retry: the input is still missing


async def test_partner_inputs_come_from_expressions_then_parameters() -> None:
    tpl = template(
        ONE_ACTION.replace(
            "action: payer.verify_benefits",
            "action: payer.verify_benefits\n    inputs: {drug_code: context.ndc}",
        )
    )
    sim = await simulate(tpl, APPROVING, context={"ndc": "11111-2222-33"})
    assert sim.runtime.calls[0].fields == {"drug_code": "11111-2222-33"}
    sim = await simulate(template(ONE_ACTION), APPROVING)
    assert sim.runtime.calls[0].fields == {"drug_code": "99999-0001-01"}  # the parameter


# -- wait_for_event ---------------------------------------------------------------------------

WAIT = """
id: wait
version: 1
events: {patient.checked_in: a check-in}
steps:
  - id: checkin
    kind: wait_for_event
    event: patient.checked_in
    correlation: context.visit
    timeout: 3d
    on_timeout: late
  - id: done
    kind: exit
  - id: late
    kind: exit
    outcome: abandoned
    reason: late
"""


async def test_wait_matches_type_and_key_ignores_duplicates_and_keeps_early_events() -> None:
    early = event("patient.checked_in", "V-1", event_id="e1")
    other = event("patient.checked_in", "V-2", event_id="e2")

    def setup(rt: VirtualRuntime) -> None:
        assert [rt.receive(early), rt.receive(early), rt.receive(other)] == [True, False, True]

    sim = await simulate(template(WAIT), setup=setup, context={"visit": "V-1"})
    assert sim.state.status == "completed"
    assert sim.state.events["checkin"]["event_id"] == "e1"
    assert [e.event_id for e in sim.runtime.inbox.events] == ["e2"]  # the other key stays


async def test_wait_times_out_to_on_timeout_at_the_deadline() -> None:
    sim = await simulate(template(WAIT), context={"visit": "V-1"})
    assert (sim.state.status, sim.state.outcome_reason) == ("abandoned", "late")
    assert sim.runtime.clock == T0 + timedelta(days=3)


async def test_wait_on_a_key_that_resolves_to_nothing_holds_instead_of_waiting_on_none() -> None:
    reasons: list[str | None] = []

    def setup(rt: VirtualRuntime) -> None:
        def on_idle(rt: VirtualRuntime) -> bool:
            if rt.state.pending_wait and rt.state.pending_wait.event_types == ["operator.retry"]:
                reasons.append(rt.state.attention_reason)
                rt.receive(event("operator.retry", "checkin", correlation_key="V-9"))
                rt.receive(event("patient.checked_in", "V-9"))
                return True
            return False

        rt.on_idle = on_idle

    sim = await simulate(template(WAIT), setup=setup, context={})
    assert reasons == ["checkin: correlation 'context.visit' resolved to nothing"]
    assert sim.state.status == "completed"
    assert sim.state.pending_wait is None and not sim.state.needs_attention


# -- delay, branch ------------------------------------------------------------------------------

DELAYS = """
id: delays
version: 1
parameters: {gap: 2d}
steps:
  - id: two_days
    kind: delay
    duration: params.gap
  - id: until_then
    kind: delay
    until: at(journey.started_at) + days(3)
    at_local_time: "08:30"
  - id: which
    kind: branch
    cases:
      - when: context.tier == 'gold'
        goto: gold
    default: plain
  - id: gold
    kind: exit
    reason: gold
  - id: plain
    kind: exit
    reason: plain
"""


async def test_delays_move_the_virtual_clock_and_branches_pick_the_first_match() -> None:
    sim = await simulate(template(DELAYS), context={"tier": "gold", "timezone": "Europe/Madrid"})
    first, second = sim.state.completed_steps[0], sim.state.completed_steps[1]
    assert first.finished_at == T0 + 2 * DAY
    assert second.finished_at is not None
    local = second.finished_at.astimezone(ZoneInfo("Europe/Madrid"))
    assert (local.hour, local.minute) == (8, 30) and second.finished_at > T0 + 3 * DAY
    assert second.finished_at - T0 < 4 * DAY
    assert sim.state.outcome_reason == "gold"
    assert (await simulate(template(DELAYS), context={})).state.outcome_reason == "plain"


# -- human_task ---------------------------------------------------------------------------------

TASK = """
id: task
version: 1
steps:
  - id: call
    kind: human_task
    role: nurse
    sla: 1d
    escalate_to: lead
    give_up_after: 2d
    on_timeout: gave_up
  - id: done
    kind: exit
  - id: gave_up
    kind: exit
    outcome: abandoned
    reason: gave_up
"""


async def test_human_task_escalates_after_its_sla_and_gives_up_later() -> None:
    sim = await simulate(template(TASK))
    assert (sim.state.status, sim.state.outcome_reason) == ("abandoned", "gave_up")
    assert sim.runtime.clock == T0 + 3 * DAY
    assert sim.state.tasks[0].escalated_to == "lead"
    kinds = [n.kind for n in sim.runtime.notes if n.kind.startswith("task.")]
    assert kinds == ["task.opened", "task.escalated", "task.abandoned"]


async def test_human_task_done_after_escalation() -> None:
    done = event("task.completed", "call-1")
    sim = await simulate(template(TASK), events=[(timedelta(hours=30), done)])
    assert sim.state.status == "completed"
    assert sim.state.completed_steps[0].outcome == "done_after_escalation"
    assert not sim.state.needs_attention


# -- message ------------------------------------------------------------------------------------

MESSAGE = """
id: message
version: 1
steps:
  - id: hello
    kind: message
    channel: sms
    values: {days_until: "3"}
    text: "{program_name}: due in {days_until} days."
  - id: done
    kind: exit
"""


async def test_message_is_rendered_and_a_suppressed_one_flags_the_journey() -> None:
    sim = await simulate(template(MESSAGE))
    assert sim.runtime.contacts[0].text == "Pitwall Patient Support: due in 3 days."
    assert sim.state.messages_sent == 1

    from domain.actions import ContactOutcome

    def setup(rt: VirtualRuntime) -> None:
        rt.contact_outcome = lambda r: ContactOutcome(status="suppressed", reason="no_consent")

    sim = await simulate(template(MESSAGE), setup=setup)
    assert sim.state.messages_sent == 0
    assert sim.state.completed_steps[0].outcome == "suppressed:no_consent"


# -- parallel -----------------------------------------------------------------------------------

PARALLEL = """
id: par
version: 1
parameters: {drug_code: "99999-0001-01", days_supply: 28}
steps:
  - id: both
    kind: parallel
    join: JOIN
    branches:
      - id: pa
        steps:
          - id: pa_submit
            kind: partner_action
            action: payer.submit_prior_auth
            next: pa_decision
          - id: pa_lost
            kind: exit
            outcome: abandoned
            reason: pa_lost
          - id: pa_decision
            kind: wait_for_event
            event: pa.decided
            correlation: steps.pa_submit.pa_number
            timeout: 10d
            on_timeout: pa_lost
      - id: bridge
        steps:
          - id: bridge_wait
            kind: delay
            duration: 2d
          - id: bridge_supply
            kind: partner_action
            action: pharmacy.refer
  - id: after
    kind: branch
    cases:
      - when: steps.both.first == 'bridge'
        goto: bridged
    default: decided
  - id: bridged
    kind: exit
    reason: bridge_first
  - id: decided
    kind: exit
    reason: pa_first
"""
PENDED = {**APPROVING, "payer.submit_prior_auth": {"pa_number": "PA-7", "outcome": "pended"}}


async def test_parallel_join_all_waits_for_every_branch() -> None:
    tpl = template(PARALLEL.replace("JOIN", "all"))
    decided = event("pa.decided", "PA-7", outcome="approved")
    sim = await simulate(tpl, PENDED, events=[(5 * DAY, decided)])
    assert sim.state.outcome_reason == "bridge_first"
    assert sim.state.outputs["both"] == {"first": "bridge", "finished": ["bridge", "pa"]}
    assert [c.action for c in sim.runtime.calls] == ["payer.submit_prior_auth", "pharmacy.refer"]
    joined = next(r for r in sim.state.completed_steps if r.step_id == "both")
    assert joined.finished_at == T0 + 5 * DAY  # the PA branch ended last
    assert not sim.state.branches


async def test_parallel_join_first_cancels_the_other_branches() -> None:
    decided = event("pa.decided", "PA-7", outcome="approved")
    sim = await simulate(template(PARALLEL.replace("JOIN", "first")), PENDED,
                         events=[(DAY, decided)])  # fmt: skip
    assert sim.state.outcome_reason == "pa_first"
    assert sim.state.outputs["both"]["finished"] == ["pa"]
    assert [c.action for c in sim.runtime.calls] == ["payer.submit_prior_auth"]  # no bridge


async def test_an_exit_inside_a_branch_ends_the_whole_journey() -> None:
    sim = await simulate(template(PARALLEL.replace("JOIN", "all")), PENDED)
    assert (sim.state.status, sim.state.outcome_reason) == ("abandoned", "pa_lost")
    assert sim.runtime.clock == T0 + 10 * DAY
    assert not sim.state.branches and sim.state.current_step is None


# -- repeat -------------------------------------------------------------------------------------

REPEAT = """
id: rep
version: 1
parameters: {drug_code: "99999-0001-01", days_supply: 28, most: 5}
steps:
  - id: cycles
    kind: repeat
    max: params.most
    while: "loops.cycles.iteration < context.wanted"
    steps:
      - id: wait_a_day
        kind: delay
        duration: 1d
      - id: refill
        kind: partner_action
        action: pharmacy.refer
  - id: done
    kind: exit
"""


@pytest.mark.parametrize(("wanted", "ran"), [(3, 3), (99, 5), (0, 0)])
async def test_repeat_runs_while_its_condition_holds_and_never_past_max(wanted, ran) -> None:
    sim = await simulate(template(REPEAT), APPROVING, context={"wanted": wanted})
    assert len(sim.runtime.calls) == ran
    assert sim.state.visits.get("refill", 0) == ran
    assert len({c.idempotency_key for c in sim.runtime.calls}) == ran  # a key per cycle
    assert sim.runtime.clock == T0 + ran * DAY
    assert sim.state.completed_steps[-2].outcome == f"iterations:{ran}"


# -- control and continue-as-new -------------------------------------------------------------


async def test_pause_holds_the_journey_between_steps_and_cancel_ends_a_wait() -> None:
    def setup(rt: VirtualRuntime) -> None:
        rt.later(T0 + timedelta(hours=12), rt.pause)  # during the 2-day delay
        rt.later(T0 + 5 * DAY, rt.resume)
        rt.later(T0 + 6 * DAY, lambda: rt.cancel("withdrawn"))

    tpl = template(
        DELAYS.replace("at(journey.started_at) + days(3)", "at(journey.started_at) + days(30)")
    )
    sim = await simulate(tpl, setup=setup, context={})
    assert sim.state.status == "cancelled" and sim.state.outcome_reason == "withdrawn"
    assert sim.state.completed_steps[0].finished_at == T0 + 2 * DAY  # the timer still ran
    assert sim.state.visits == {"two_days": 1, "until_then": 1}  # step 2 began only after resume
    assert sim.runtime.clock == T0 + 6 * DAY and sim.state.next_due_at is None


async def test_switching_runs_at_step_boundaries_changes_nothing_a_user_sees() -> None:
    tpl = template(REPEAT)
    plain = await simulate(tpl, APPROVING, context={"wanted": 5})
    switched = await simulate(tpl, APPROVING, context={"wanted": 5}, switch_every=2)
    assert switched.runs > 4
    for field in ("status", "outcome_reason", "visits", "steps_completed", "outputs"):
        assert getattr(switched.state, field) == getattr(plain.state, field), field
    assert [c.idempotency_key for c in switched.runtime.calls] == [
        c.idempotency_key for c in plain.runtime.calls
    ]
    assert switched.runtime.clock == plain.runtime.clock


# -- the copay partner, through the registry ---------------------------------------------------

COPAY = """
id: copay
version: 1
parameters: {copay_program: "demo-copay"}
steps:
  - id: copay
    kind: partner_action
    action: copay.enroll
    inputs: {plan_type: context.plan_type}
  - id: eligible
    kind: branch
    cases:
      - when: steps.copay.outcome == 'approved'
        goto: enrolled
      - when: steps.copay.rejection == 'government_insurance'
        goto: foundation
    default: enrolled
  - id: enrolled
    kind: exit
    reason: copay_card
  - id: foundation
    kind: exit
    outcome: completed
    reason: refer_to_foundation
"""


@pytest.mark.parametrize(
    ("plan_type", "answer", "reason"),
    [
        ("commercial", {"enrollment_id": "ce_1", "outcome": "approved", "card": {
            "bin": "610020", "pcn": "PW", "group": "G1", "member_id": "M1",
            "annual_benefit_cap": 15000.0}}, "copay_card"),
        ("medicare", {"enrollment_id": "ce_2", "outcome": "rejected",
                      "rejection": "government_insurance"}, "refer_to_foundation"),
    ],
)  # fmt: skip
async def test_a_template_branches_on_the_copay_answer(plan_type, answer, reason) -> None:
    sim = await simulate(
        template(COPAY), {"copay.enroll": answer}, context={"plan_type": plan_type}
    )
    assert sim.state.outcome_reason == reason
    assert sim.runtime.calls[0].fields == {"copay_program": "demo-copay", "plan_type": plan_type}
    assert sim.state.outputs["copay"]["enrollment_id"] == answer["enrollment_id"]


async def test_a_plan_type_the_copay_program_does_not_know_is_held_not_sent() -> None:
    reasons: list[str | None] = []

    def setup(rt: VirtualRuntime) -> None:
        rt.on_idle = held_then_retry("copay", reasons, most=1)

    with pytest.raises(Stuck):
        await simulate(template(COPAY), {}, setup=setup, context={"plan_type": "cash"})
    assert reasons == ["copay: request.invalid: copay.enroll input(s) plan_type missing or invalid"]
    assert "cash" not in str(reasons)  # the field's name, never its value


BUSINESS_TASK = """
id: business_task
version: 1
parameters: {followup_sla: 8bh}
steps:
  - id: call
    kind: human_task
    role: nurse
    sla: params.followup_sla
    escalate_to: lead
    give_up_after: 1bd
    on_timeout: gave_up
  - id: done
    kind: exit
  - id: gave_up
    kind: exit
    outcome: abandoned
"""


@pytest.mark.parametrize(
    ("opened", "due", "given_up"),
    [
        # Friday 16:00 New York, 8 business hours (09:00-17:00): Monday 16:00; a business
        # day later, Tuesday 16:00.
        ("2026-12-04T21:00:00+00:00", "2026-12-07T21:00:00+00:00", "2026-12-08T21:00:00+00:00"),
        # The day before Thanksgiving: the holiday is skipped.
        ("2026-11-25T20:00:00+00:00", "2026-11-27T20:00:00+00:00", "2026-11-30T20:00:00+00:00"),
        # Over the spring DST change (Sunday 2026-03-08): 16:00 local stays 16:00 local.
        ("2026-03-06T21:00:00+00:00", "2026-03-09T20:00:00+00:00", "2026-03-10T20:00:00+00:00"),
    ],
)
async def test_a_task_sla_in_business_hours_counts_the_programs_calendar(
    opened: str, due: str, given_up: str
) -> None:
    start = datetime.fromisoformat(opened)
    sim = await simulate(template(BUSINESS_TASK), setup=lambda rt: setattr(rt, "clock", start))
    [task] = sim.state.tasks
    assert (task.opened_at, task.due_at) == (start, datetime.fromisoformat(due))
    assert sim.state.status == "abandoned"
    escalated, abandoned = (
        c for c in sim.runtime.task_changes if c.change in ("escalated", "abandoned")
    )
    assert escalated.due_at == datetime.fromisoformat(given_up)
    assert task.closed_at == datetime.fromisoformat(given_up) and abandoned.role == "nurse"


MILESTONES = """
id: milestones
version: 1
steps:
  - id: wait_consent
    kind: wait_for_event
    event: consent.signed
    correlation: "'c-1'"
    timeout: 3d
    on_timeout: lapsed
  - id: counted
    kind: delay
    duration: 2d
    milestone: consent_complete
  - id: again
    kind: delay
    duration: 1d
    milestone: consent_complete
  - id: done
    kind: exit
    milestone: delivered
  - id: lapsed
    kind: exit
    outcome: abandoned
"""


async def test_milestones_are_timestamped_once_in_the_state_and_on_the_timeline() -> None:
    signed = event("consent.signed", "c-1")
    sim = await simulate(template(MILESTONES), events=[(timedelta(hours=30), signed)])
    assert sim.state.milestones == {
        "consent_complete": T0 + timedelta(hours=30),  # the first step that names it
        "delivered": T0 + timedelta(days=4, hours=6),  # 30 h, then 2 d and 1 d of delays
    }
    notes = [n.summary for n in sim.runtime.notes if n.kind == "journey.milestone"]
    assert notes == ["milestone consent_complete", "milestone delivered"]


MISSING_INFO = """
id: missing_info
version: 1
parameters: {reminder_after: 24h, escalate_after: 48h}
steps:
  - id: missing_info
    kind: human_task
    title: Send the missing enrollment information
    role: prescriber_office
    sla: params.reminder_after
    escalate_to: prescriber_office
    escalations:
      - {after: params.escalate_after, to: case_manager}
    give_up_after: 5d
    on_timeout: lapsed
  - id: done
    kind: exit
  - id: lapsed
    kind: exit
    outcome: abandoned
"""


async def test_an_escalation_chain_reminds_at_24h_escalates_at_72h_then_is_done() -> None:
    done = event("task.completed", "missing_info-1", outcome="received")
    sim = await simulate(template(MISSING_INFO), events=[(timedelta(hours=80), done)])
    changes = [(c.change, c.role, c.due_at) for c in sim.runtime.task_changes]
    assert changes == [
        ("opened", "prescriber_office", T0 + timedelta(hours=24)),
        ("escalated", "prescriber_office", T0 + timedelta(hours=72)),  # a reminder
        ("escalated", "case_manager", T0 + timedelta(hours=72, days=5)),
        ("completed", "prescriber_office", None),
    ]
    notes = [n.summary for n in sim.runtime.notes if n.kind == "task.escalated"]
    assert notes == [
        "task overdue; escalated to prescriber_office",
        "task overdue; escalated to case_manager (level 2)",
    ]
    assert sim.state.completed_steps[0].outcome == "done_after_escalation"
    assert sim.state.events["missing_info"]["outcome"] == "received"
    assert not sim.state.needs_attention


async def test_an_escalation_chain_nobody_answers_is_given_up() -> None:
    sim = await simulate(template(MISSING_INFO))
    assert [c.change for c in sim.runtime.task_changes] == [
        "opened", "escalated", "escalated", "abandoned",
    ]  # fmt: skip
    assert sim.state.status == "abandoned"
    assert sim.state.tasks[0].closed_at == T0 + timedelta(hours=72, days=5)
