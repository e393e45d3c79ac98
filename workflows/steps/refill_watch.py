"""refill_watch: dispenses in, reminders / escalations / re-authorizations out.

The decisions are domain/refill_cycle.py's (pure, shared with the simulator); this
handler waits for the next dispense or the next due instant, opens and closes the tasks
the step owns, keeps the stage (ON_THERAPY ⇄ AT_RISK → DISCONTINUED) and notes each
turn on the timeline. A visit ends at each dispense, so a journey of years reaches a
step boundary every cycle and can continue as new there.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from domain import refill_cycle as cycle
from domain.actions import TaskChange
from domain.events import TASK_COMPLETED
from domain.journey import HumanTask
from domain.partners import PartnerEvent
from domain.steps.refill_watch import DISPENSED, RefillWatchStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter

# A reminder more than this late (the journey was in a re-authorization) is not sent.
STALE_REMINDER = timedelta(hours=12)
# Two things planned for one instant go in their kind's order, however late the journey
# woke (before: a caught-up reauthorization lost every tie to a reminder).
DUE_TIES_PATCH = "refill-due-ties-v1"
ON_THERAPY = "ON_THERAPY"
AT_RISK = "AT_RISK"
DISCONTINUED = "DISCONTINUED"
STAGES = {"awaiting_first_fill": ON_THERAPY, "on_therapy": ON_THERAPY, "at_risk": AT_RISK,
          "discontinued": DISCONTINUED}  # fmt: skip


@handles("refill_watch")
async def refill_watch(
    j: JourneyInterpreter, step: RefillWatchStep, resume: list[Frame] | None
) -> Outcome:
    policy = _policy(j, step)
    key = str(j.eval(step.correlation))
    state = j.state.refill
    if state is None:
        state = j.state.refill = cycle.start(policy.today(j.rt.now()))
    _log_reminder(j, step, state)
    arrived: PartnerEvent | None = None
    while True:
        now = j.rt.now()
        today = policy.today(now)
        for year in cycle.close_years(state, today):
            j.rt.note(
                "refill.year_closed", f"refill/year/{year.year}",
                f"measurement year {year.year} closed: PDC {year.pdc:.2f}"
                + (" (adherent)" if year.adherent else ""),
            )  # fmt: skip
        _close_done_tasks(j, step)
        event = arrived or j.rt.take_event([DISPENSED], key)
        arrived = None
        if event is not None:
            applied = cycle.apply_dispense(state, event.data, now, policy)
            if applied in ("filled", "corrected"):
                return await _after_dispense(j, step, state, policy, applied, today)
            continue
        _assess(j, step, state, policy, today)
        due = cycle.next_due(
            state, policy, now,
            pa_expires_on=_latest_date(j, step.pa_expires_on),
            copay_recheck=step.on_copay_recheck is not None and _cost_is_a_reason(state),
            ties_by_plan=j.rt.patched(DUE_TIES_PATCH),
        )  # fmt: skip
        if due is not None and due.at <= now:
            target = await _act(j, step, state, policy, due, today)
            if target is not None:
                return target
            continue
        j.rt.publish(j.state)
        arrived = await j.wait([DISPENSED], key, due.at if due else None, step)


async def _after_dispense(
    j: JourneyInterpreter,
    step: RefillWatchStep,
    state: cycle.RefillState,
    policy: cycle.RefillPolicy,
    applied: str,
    today: date,
) -> Outcome:
    if applied == "filled":
        await _close_tasks(j, step, "refilled")  # nobody needs to call about it any more
        if j.state.stage == AT_RISK:
            j.rt.note("refill.back_on_therapy", f"refill/back/{state.at_risk_episodes}",
                      "refill arrived: back on therapy")  # fmt: skip
    _set_stage(j, step, state)
    _assess(j, step, state, policy, today)
    run_out = state.run_out.isoformat() if state.run_out else "-"
    what = "dispense recorded" if applied == "filled" else "dispense withdrawn"
    j.rt.note("refill.dispensed", f"refill/{applied}/{j.visits[step.id]}",
              f"{what}; supply until {run_out}", step=step.id)  # fmt: skip
    _result(j, step, state, applied)
    return step.next, applied


async def _act(
    j: JourneyInterpreter,
    step: RefillWatchStep,
    state: cycle.RefillState,
    policy: cycle.RefillPolicy,
    due: cycle.Due,
    today: date,
) -> Outcome | None:
    """Do what is due; a target when the template takes over, None to keep watching."""
    if due.kind == "year_end":
        return None  # closed at the top of the loop
    if due.kind == "reminder":
        leads = cycle.mark_reminded(state, due, policy)
        if j.rt.now() - due.at > STALE_REMINDER or (state.run_out and state.run_out <= today):
            return None  # held up (a re-authorization, a person): too late to say "in 3 days"
        lead = max(leads)
        # The policy's dedupe key: this prescription, this run-out, this lead.
        reason = f"{j.eval(step.correlation)}/{state.run_out}/{lead}"
        _result(j, step, state, "reminder", lead=lead, reason=reason)
        return step.on_reminder, f"reminder:{lead}"
    if due.kind == "proactive_call":
        state.proactive_for = state.run_out
        title = "Call the patient before the refill runs out (high refill risk)"
        await _open_task(j, step, "proactive", step.nurse_role, title)
        return None
    if due.kind == "copay_recheck":
        state.copay_rechecked_for = state.run_out
        _result(j, step, state, "copay_recheck")
        return step.on_copay_recheck, "copay_recheck"
    if due.kind == "at_risk":
        state.status = "at_risk"
        state.at_risk_since = today
        state.at_risk_episodes += 1
        if state.reminded:
            state.unanswered_in_a_row += 1
        _set_stage(j, step, state)
        await _open_task(j, step, f"at-risk-{state.at_risk_episodes}", step.nurse_role,
                         "Call the patient: the refill is overdue")  # fmt: skip
        await _open_task(j, step, f"prescriber-{state.at_risk_episodes}", step.prescriber_role,
                         "A patient's refill is overdue: please review the therapy")  # fmt: skip
        _assess(j, step, state, policy, today)
        return None
    if due.kind == "reauthorize":
        assert due.key is not None
        cycle.mark_reauthorized(state, due.key)
        j.rt.note("refill.reauthorize", f"refill/{due.key}",
                  f"re-authorization started ({due.reason})")  # fmt: skip
        if step.on_reauthorize is None:
            return None
        _result(j, step, state, "reauthorize", reason=due.reason)
        return step.on_reauthorize, f"reauthorize:{due.reason}"
    # discontinue
    state.status = "discontinued"
    state.discontinued_reason = due.reason
    await _close_tasks(j, step, "discontinued")
    _set_stage(j, step, state)
    _result(j, step, state, "discontinued", reason=due.reason)
    return step.on_discontinued, f"discontinued:{due.reason}"


# -- pieces ---------------------------------------------------------------------------------
def _policy(j: JourneyInterpreter, step: RefillWatchStep) -> cycle.RefillPolicy:
    """The step's settings resolved: from the template, its parameters and the start
    alone, so the same for the whole run (worked out at its first visit)."""
    key = ("refill_policy", step.id)
    if key not in j.memo:
        j.memo[key] = _resolve_policy(j, step)
    policy: cycle.RefillPolicy = j.memo[key]
    return policy


def _resolve_policy(j: JourneyInterpreter, step: RefillWatchStep) -> cycle.RefillPolicy:
    plan_year = None
    if step.plan_year_check:
        month, day = step.plan_year_check.split("-")
        plan_year = (int(month), int(day))
    return cycle.RefillPolicy(
        timezone=j.timezone,
        jitter_key=j.start.workflow_id,  # the same on every replay (not the run's own id)
        reminder_leads=tuple(step.reminder_leads),
        high_risk_leads=tuple(step.high_risk_leads),
        proactive_lead=step.proactive_lead,
        at_risk_after=j.duration(step.at_risk_after).days,
        discontinue_after=j.duration(step.discontinue_after).days,
        reauthorize_before=j.duration(step.reauthorize_before).days,
        plan_year_check=plan_year,
        refill_threshold=Fraction(str(step.refill_threshold)),
        weights=j.template.risk_weights,
    )


def _assess(
    j: JourneyInterpreter,
    step: RefillWatchStep,
    state: cycle.RefillState,
    policy: cycle.RefillPolicy,
    today: date,
) -> None:
    friction = j.eval(step.pa_friction) if step.pa_friction else 0
    before = state.risk.level if state.risk else None
    state.risk = cycle.assess_risk(
        state, today, policy.weights,
        pa_friction=int(friction) if isinstance(friction, int | float) else 0,
        out_of_pocket=_first_amount(j, step.out_of_pocket),
    )  # fmt: skip
    if state.risk.level != before:
        j.rt.note("refill.risk", f"refill/risk/{j.visits[step.id]}/{state.risk.level}",
                  f"refill risk {state.risk.level} ({state.risk.score})")  # fmt: skip


def _cost_is_a_reason(state: cycle.RefillState) -> bool:
    return state.risk is not None and any(r.startswith("out_of_pocket") for r in state.risk.reasons)


def _log_reminder(j: JourneyInterpreter, step: RefillWatchStep, state: cycle.RefillState) -> None:
    """Back from the reminder step: which channel it reached (engagement, for the risk)."""
    last = j.state.completed_steps[-1] if j.state.completed_steps else None
    if last is None or last.step_id != step.on_reminder or last.outcome is None:
        return
    channel = last.outcome.removeprefix("sent:") if last.outcome.startswith("sent:") else None
    on = last.finished_at or j.rt.now()
    state.reminders.append(cycle.ReminderSent(on=on.date(), channel=channel))


def _latest_date(j: JourneyInterpreter, expressions: list[str]) -> date | None:
    found = [_as_date(j.eval(e)) for e in expressions]
    return max((d for d in found if d is not None), default=None)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _first_amount(j: JourneyInterpreter, expressions: list[str]) -> Decimal | None:
    for expression in expressions:
        value = j.eval(expression)
        if value is None or isinstance(value, bool):
            continue
        try:
            return Decimal(str(value))
        except InvalidOperation:
            continue
    return None


def _set_stage(j: JourneyInterpreter, step: RefillWatchStep, state: cycle.RefillState) -> None:
    stage = STAGES[state.status]
    if j.state.stage != stage:
        j.state.stage = stage
        j.rt.note("journey.milestone", f"stage/{stage}/{state.at_risk_episodes}/"
                  f"{state.fills_counted}", f"stage {stage}", step=step.id)  # fmt: skip
    j.rt.publish(j.state)


def _result(
    j: JourneyInterpreter,
    step: RefillWatchStep,
    state: cycle.RefillState,
    due: str,
    *,
    lead: int | None = None,
    reason: str | None = None,
) -> None:
    today = j.today()
    j.outputs[step.id] = {
        "due": due,
        "lead": lead,
        "days_until": (state.run_out - today).days if state.run_out else None,
        "due_date": state.run_out.isoformat() if state.run_out else None,
        "reason": reason,
        "risk_level": state.risk.level if state.risk else None,
        "pdc": state.pdc_year_to_date,
    }


# -- the tasks this step opens --------------------------------------------------------------
def _change(j: JourneyInterpreter, task: HumanTask, change: str, outcome: str | None = None
            ) -> TaskChange:  # fmt: skip
    return TaskChange(
        journey_ref=j.state.journey_id, patient_ref=j.start.patient_ref, program=j.start.program,
        step_id=task.step_id, idempotency_key=f"{j.state.journey_id}/{task.task_id}/{change}",
        change=change, task_id=task.task_id, title=task.title, role=task.role,
        opened_at=task.opened_at, due_at=task.due_at if change == "opened" else None,
        outcome=outcome,
    )  # fmt: skip


async def _open_task(
    j: JourneyInterpreter, step: RefillWatchStep, name: str, role: str, title: str
) -> None:
    task = HumanTask(
        task_id=f"{step.id}-{name}-{j.state.refill.fills_counted if j.state.refill else 0}",
        step_id=step.id,
        title=title,
        role=role,
        opened_at=j.rt.now(),
        due_at=j.deadline(step.task_sla),
    )
    if any(t.task_id == task.task_id for t in j.state.tasks):
        return
    j.state.tasks.append(task)
    await j.rt.task_changed(_change(j, task, "opened"))
    j.rt.note("task.opened", f"task/{task.task_id}/opened", f"task for {role}: {title}",
              task_id=task.task_id)  # fmt: skip


async def _close_tasks(j: JourneyInterpreter, step: RefillWatchStep, outcome: str) -> None:
    """The step's open tasks have nothing left to do (the refill came, or the journey
    ended): closed, in the queue too."""
    for task in j.state.tasks:
        if task.step_id == step.id and task.closed_at is None:
            task.closed_at = j.rt.now()
            await j.rt.task_changed(_change(j, task, "cancelled", outcome))
            j.rt.note("task.cancelled", f"task/{task.task_id}/cancelled",
                      f"task closed: {outcome}", task_id=task.task_id)  # fmt: skip


def _close_done_tasks(j: JourneyInterpreter, step: RefillWatchStep) -> None:
    """A person finished one of the step's tasks (the queue has it already)."""
    for task in j.state.tasks:
        if task.step_id == step.id and task.closed_at is None:
            done = j.rt.take_event([TASK_COMPLETED], task.task_id)
            if done is not None:
                task.closed_at = j.rt.now()
                j.rt.note("task.completed", f"task/{task.task_id}/completed",
                          f"task done by {task.role}", task_id=task.task_id)  # fmt: skip
