"""The people around a journey, for one sampled patient: the hub's staff work the tasks
the journey opens, and the patient confirms the first dose.

Each task the journey opens (seen through `rt.task_changed`) is completed
`task_hours_for(role, k)` hours after it opened, k its order among the patient's tasks
of that role, as the task queue tells the journey (``task.completed``, correlation the
task id), unless that draw is None (never worked) or the task was closed meanwhile. The
onboarding (injection training) task done, the patient's first dose is confirmed
`first_dose_days` later (``patient.first_dose_confirmed``, correlation
``onboarding-<patient ref>``), unless never.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from domain.actions import TaskChange
from domain.events import TASK_COMPLETED
from domain.partners import PartnerEvent
from simulate.runtime import VirtualRuntime
from simulate.script import World

FIRST_DOSE = "patient.first_dose_confirmed"
ONBOARDING_STEP = "onboarding"
CLOSED = frozenset({"completed", "abandoned", "cancelled"})


class People:
    """The hub's staff and the patient: they work the journey's tasks."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.patient = world.patient
        self.opened_by_role: Counter[str] = Counter()
        self.closed: set[str] = set()
        self._serial = 0

    def task_changed(self, rt: VirtualRuntime, change: TaskChange) -> None:
        """A task opened: its completion is scheduled (if it is ever worked)."""
        if change.change in CLOSED:
            self.closed.add(change.task_id)
            return
        if change.change != "opened":
            return
        done = self.completion_at(change.role, change.opened_at)
        if done is not None:
            rt.later(done, lambda: self._complete(rt, change, done))

    def completion_at(self, role: str, opened_at: datetime) -> datetime | None:
        """When the task of `role` opened now is completed (the patient's next draw for
        that role); None: nobody ever works it."""
        k = self.opened_by_role[role]
        self.opened_by_role[role] += 1
        hours = self.patient.task_hours_for(role, k)
        return None if hours is None else opened_at + timedelta(hours=hours)

    def first_dose_at(self, step_id: str, done: datetime) -> datetime | None:
        """The onboarding task done then: when the patient confirms the first dose."""
        if step_id != ONBOARDING_STEP or self.patient.first_dose_days is None:
            return None
        return done + timedelta(days=self.patient.first_dose_days)

    def _complete(self, rt: VirtualRuntime, change: TaskChange, at: datetime) -> None:
        if change.task_id in self.closed or rt.state.status != "running":
            return  # closed meanwhile (given up, cancelled): nothing to complete
        self._serial += 1
        n = self._serial
        rt.deliver(
            PartnerEvent(
                event_id=f"task-sim{self.patient.index}-{n}-completed", type=TASK_COMPLETED,
                correlation_key=change.task_id, journey_ref=change.journey_ref, occurred_at=at,
                data={"outcome": "done", "by": f"sim-{change.role}"},  # the API's default
            )
        )  # fmt: skip
        dose = self.first_dose_at(change.step_id, at)
        if dose is not None:
            rt.deliver(
                PartnerEvent(
                    event_id=f"first-dose-{change.task_id}-{self.world.patient_ref}",
                    type=FIRST_DOSE, correlation_key=f"onboarding-{self.world.patient_ref}",
                    journey_ref=change.journey_ref, occurred_at=dose, data={},
                ),
                dose,
            )  # fmt: skip

    def observe_tasks(self, rt: VirtualRuntime) -> None:
        """Hook the runtime's task changes (the queue's view), keeping its own effect."""
        record = rt.task_changed

        async def task_changed(change: TaskChange) -> None:
            await record(change)
            self.task_changed(rt, change)

        rt.task_changed = task_changed  # type: ignore[method-assign]
