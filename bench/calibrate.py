"""Calibrate the simulator's cost estimate against real workflows: simulate/calibration.json.

    PYTHONPATH=. .venv/bin/python bench/calibrate.py [--template refill_adherence]
        [--patients 6] [--months 6] [--seed 1] [--write]

For a handful of patients sampled from the `typical` scenario, the template runs as real
workflows through the whole stack on the time-skipping dev server, moved in lock step as
the fidelity test moves them (bench/simulate.py `run_real`), and on the simulator
(`run_patient`, from the same start and pseudonym). Every
run's history is fetched (continue-as-new makes several) and counted; the simulator's
count for the same patient is `simulate.cost.units` (1 + its activities, timers,
signalled events and extra runs). Over all the patients:

    actions_per_unit = billable actions / units
    events_per_unit  = history events / units
    bytes_per_event  = history bytes / history events

`--write` stores them in simulate/calibration.json under the template id, in the shape
of simulate/cost.py's `Calibration`.

Billable actions, counted from history events as Temporal Cloud bills them:

- a run started (WorkflowExecutionStarted: the first run and each continue-as-new);
- an activity started or retried: each ActivityTaskStarted counts its `attempt` (the
  history keeps one started event per activity, numbered with its last attempt);
- a timer started (TimerStarted, including the timers behind waits with a timeout);
- a signal received (WorkflowExecutionSignaled) or sent (SignalExternal...Initiated);
- an update accepted (WorkflowExecutionUpdateAccepted; rejected updates leave no event);
- a search-attribute upsert (UpsertWorkflowSearchAttributes; one that only sets
  TemporalChangeVersion is exempt);
- local activities: the markers of one workflow task count once (core_local_activity);
  a side-effect marker counts once; patch (version) markers are free;
- a child workflow: two (start and execution);
- workflow execution options updated: one (but the time-skipping config updates each
  fast-forward writes: the bench's, not the journey's; they are left out of the events
  and bytes too).

Queries are billable too but leave no history; the bench's own state queries are not the
journey's cost and are not counted. The cancellation at the horizon is one update per
journey that the simulator does not count (it cancels on its own clock).

History bytes are the events' protobuf encoding (what the server stores), not JSON.
"""

# ruff: noqa: E402 (the imports come after the sys.path fix below)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and bench/simulate.py would shadow
# the `simulate` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from bench.simulate import (
    RealJourney,
    event_bytes,
    event_count,
    journey_events,
    run_real,
    time_skipping_env,
)
from domain.template import JourneyTemplate
from domain.template_loader import get_template
from simulate.cohort import PatientResult, run_patient
from simulate.cohort_scenario import load_scenario, sample
from simulate.cost import CALIBRATION, Calibration, units
from tests.e2e.conftest import PROGRAM as FIDELITY_PROGRAM

SCENARIO = "typical"
E = EventType
CHANGE_VERSION = "TemporalChangeVersion"


def billable_actions(history: WorkflowHistory) -> Counter[str]:
    """One run's billable actions by kind (see the module docstring for the rule)."""
    actions: Counter[str] = Counter()
    local_activity_tasks: set[int] = set()
    for event in journey_events(history):
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            actions["run"] += 1
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            actions["activity"] += max(event.activity_task_started_event_attributes.attempt, 1)
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            actions["timer"] += 1
        elif kind in (
            E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
            E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        ):
            actions["signal"] += 1
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            actions["update"] += 1
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes
            if set(fields.search_attributes.indexed_fields) - {CHANGE_VERSION}:
                actions["upsert"] += 1
        elif kind == E.EVENT_TYPE_MARKER_RECORDED:
            _marker(event, actions, local_activity_tasks)
        elif kind == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            actions["child"] += 2
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
            actions["options"] += 1
    return actions


def _marker(event: HistoryEvent, actions: Counter[str], local_activity_tasks: set[int]) -> None:
    marker = event.marker_recorded_event_attributes
    if marker.marker_name == "core_local_activity":
        task = marker.workflow_task_completed_event_id
        if task not in local_activity_tasks:
            local_activity_tasks.add(task)
            actions["local_activity"] += 1
    elif "side_effect" in marker.marker_name:
        actions["side_effect"] += 1


async def _real(template: JourneyTemplate, patients: int, months: float, seed: int
                ) -> list[RealJourney]:  # fmt: skip
    env = await time_skipping_env()
    async with env:
        scenario = load_scenario(SCENARIO)
        return await run_real(env, template, sample(scenario, patients, seed, months), months)


async def _simulated(
    template: JourneyTemplate, real: list[RealJourney], months: float
) -> list[PatientResult]:
    """The same patients on the simulator, from the real journeys' start and pseudonym."""
    return [
        await run_patient(template, j.patient, months, FIDELITY_PROGRAM, j.started_at,
                          j.patient_ref)
        for j in real
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="refill_adherence",
                        help="template[@version], e.g. specialty_start@2")  # fmt: skip
    parser.add_argument("--patients", type=int, default=6)
    parser.add_argument("--months", type=float, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="update simulate/calibration.json")
    args = parser.parse_args()

    name, _, version = args.template.partition("@")
    template = get_template(name, version=int(version) if version else None)
    real = asyncio.run(_real(template, args.patients, args.months, args.seed))
    simulated = asyncio.run(_simulated(template, real, args.months))
    print(f"{'patient':>7} {'sim units':>9} {'sim counts':<44} {'actions':>7} {'events':>6} "
          f"{'bytes':>7}  actions by kind")  # fmt: skip
    total = {"units": 0, "actions": 0, "events": 0, "bytes": 0}
    kinds: Counter[str] = Counter()
    for sim, journey in zip(simulated, real, strict=True):
        actions: Counter[str] = Counter()
        for history in journey.histories:
            actions.update(billable_actions(history))
        n_units, n_actions = units(sim), sum(actions.values())
        n_events, n_bytes = event_count(journey), event_bytes(journey)
        total["units"] += n_units
        total["actions"] += n_actions
        total["events"] += n_events
        total["bytes"] += n_bytes
        kinds.update(actions)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(sim.cost.items()))
        print(f"{sim.index:>7} {n_units:>9} {counts:<44} {n_actions:>7} {n_events:>6} "
              f"{n_bytes:>7}  {dict(sorted(actions.items()))}")  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    calibration = Calibration(
        actions_per_unit=round(total["actions"] / total["units"], 4),
        events_per_unit=round(total["events"] / total["units"], 4),
        bytes_per_event=round(total["bytes"] / total["events"], 1),
        source=f"bench/calibrate.py, {today}, {args.patients} patients x {args.months:g} months "
        f"({SCENARIO}, seed {args.seed})",
    )
    print(f"\nall: {total['units']} units, {total['actions']} actions "
          f"({dict(sorted(kinds.items()))}), {total['events']} events, "
          f"{total['bytes']} bytes")  # fmt: skip
    key = f"{template.id}@{template.version}"
    print(json.dumps({key: asdict(calibration)}, indent=2))
    if args.write:
        known = json.loads(CALIBRATION.read_text(encoding="utf-8")) if CALIBRATION.exists() else {}
        known[key] = asdict(calibration)
        CALIBRATION.write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
        print(f"written to {CALIBRATION}")


if __name__ == "__main__":
    main()
