"""Journeys' human tasks pushed to the external CRM work queue (adapters/crm.py).

`tasks.record` pushes after its store write, on every change of a journey's task
(opened, escalated, completed, abandoned, cancelled), when the CRM is on. A push sends
the task's whole state (subject, queue, priority, due; status and outcome when it opens
and when it closes — in between they are the CRM user's), so any push also repairs what
an earlier one missed. Only journeys' tasks go: the tasks the contact policy opens
(a reply's own words, pharmacovigilance) stay in Pitwall's queue.

**At most once, without CRM dedupe.** The CRM (like HubSpot) makes a new task for every
create it is sent. So the CRM's id is kept on our task (`crm_task_id`), and a task without
one is first looked for in the CRM by our reference (`pitwall_task_id`): found, its id is
kept and it is brought up to date. Not found: the time is written on our task
(`crm_create_started_at`), then the create is sent and its id kept. A retry that finds a
create noted but no id, and nothing in the search, while that create could still land
(`in_flight`: the push budget plus a margin for the CRM's search index) waits — a
retryable error — instead of creating again. A create answered with an error clears the
note: nothing was made. A closed task with no CRM task makes none.

**A CRM outage does not hold the journey.** The store write comes first and is never
lost; the push is bounded (`budget_s`, under the activity's 15 s start-to-close). The
choice: a CRM that does not answer (5xx, 429, timeout, connection) is retried by Temporal
with the task activity's retry policy (1 s, 2 s, …) for `CRM_PUSH_ATTEMPTS` attempts
(about 3 s plus the calls); at the last one the activity writes `crm_push_failed` on the
task's trail and returns, so the journey goes on — its task is in Pitwall's queue
(/v1/tasks) all along. The task's next change pushes again (create, or find, then
update). A CRM rejection (4xx: a wrong token, a property the portal lacks) is not
retried: `crm_push_failed` at once. A create that may still land is retried until it
cannot (bounded by `in_flight`), never written off as failed.

Nothing of the patient reaches the CRM, the logs or the errors here: task ids, statuses
and partner codes only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from temporalio.exceptions import ApplicationError

from adapters.crm import CrmClient, TaskFields, properties
from adapters.errors import PartnerRejected, PartnerUnavailable
from domain.partner_actions import PARTNER_UNAVAILABLE
from store.tasks import OPEN, Task, TaskRepository
from store.types import utcnow

log = structlog.get_logger(__name__)

CRM_PUSH_ATTEMPTS = 3  # Temporal attempts of tasks.record before a push is written off
PUSH_BUDGET_S = 10.0  # the whole push (search + create / update), within the activity's 15 s
SEARCH_LAG = timedelta(seconds=5)  # the CRM's search index catching up with a create
PUSH_FAILED = "crm_push_failed"


class CreateInFlight(Exception):
    """A create was sent and its answer not heard; it may still land: look again later."""


def task_fields(task: Task, link_base: str) -> TaskFields:
    assert task.id is not None
    return TaskFields(
        reference=str(task.id), subject=task.title or task.reason, role=task.owner_role,
        priority=task.priority, escalated=task.escalation_level > 0, due_at=task.due_at,
        status=task.status, outcome=task.outcome,
        link=f"{link_base.rstrip('/')}/v1/tasks/{task.id}",
    )  # fmt: skip


class CrmPush:
    def __init__(
        self,
        crm: CrmClient,
        tasks: TaskRepository,
        link_base: str,
        *,
        budget_s: float = PUSH_BUDGET_S,
        in_flight: timedelta | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.crm = crm
        self.tasks = tasks
        self.link_base = link_base
        self.budget_s = budget_s
        self.in_flight = in_flight if in_flight is not None else (
            timedelta(seconds=budget_s) + SEARCH_LAG
        )  # fmt: skip
        self.now = now

    async def sync(self, task_id: int, attempt: int) -> None:
        """Push, with the outage policy above (raises only what Temporal should retry)."""
        try:
            await self.push(task_id)
        except CreateInFlight:
            raise ApplicationError(
                "crm create may still land; looking again", type="crm.create_in_flight"
            ) from None
        except PartnerRejected as refused:
            await self._written_off(task_id, refused.code)
        except PartnerUnavailable as down:
            if attempt < CRM_PUSH_ATTEMPTS:
                raise ApplicationError(
                    f"crm unavailable ({down.status or 'no response'})", type=PARTNER_UNAVAILABLE
                ) from None
            await self._written_off(task_id, "crm.unavailable")

    async def _written_off(self, task_id: int, code: str) -> None:
        log.warning("crm.push_failed", task_id=task_id, code=code)
        await asyncio.to_thread(self.tasks.note, task_id, PUSH_FAILED, "crm")

    async def push(self, task_id: int) -> str | None:
        """Bring the CRM's task in line with ours; its CRM id (None: none, and none made)."""
        try:
            return await asyncio.wait_for(self._push(task_id), self.budget_s)
        except TimeoutError:
            raise PartnerUnavailable("crm", None, "timeout: push budget") from None

    async def _push(self, task_id: int) -> str | None:
        task = await asyncio.to_thread(self.tasks.get, task_id)
        if task is None:
            return None
        fields = task_fields(task, self.link_base)
        props, changes = properties(fields), properties(fields, creating=False)
        if task.crm_task_id is not None:
            if await self.crm.update(task.crm_task_id, changes) is not None:
                return task.crm_task_id
            # The CRM no longer has it (deleted there): forget the id, look again.
            await asyncio.to_thread(self.tasks.set_crm_id, task_id, None)
            task.crm_create_started_at = None
        found = await self.crm.find_by_reference(fields.reference)
        if found:
            if len(found) > 1:
                log.warning("crm.duplicate_tasks", task_id=task_id, count=len(found))
            crm_id = found[0].id
            await asyncio.to_thread(self.tasks.set_crm_id, task_id, crm_id)
            await self.crm.update(crm_id, changes)
            return crm_id
        if task.status not in OPEN:
            return None  # nothing in the CRM to close, and no stale work to make
        go = await asyncio.to_thread(
            self.tasks.crm_create_may_go, task_id, self.now(), self.in_flight
        )
        if not go:
            raise CreateInFlight()
        try:
            created = await self.crm.create(props)
        except PartnerRejected:
            await asyncio.to_thread(self.tasks.crm_create_refused, task_id)
            raise
        except PartnerUnavailable as down:
            if down.status is not None:  # answered with an error: nothing was created
                await asyncio.to_thread(self.tasks.crm_create_refused, task_id)
            raise  # a timeout may have landed: the note stays, the retry looks first
        await asyncio.to_thread(self.tasks.set_crm_id, task_id, created.id)
        log.info("crm.task_created", task_id=task_id, crm_task_id=created.id)
        return created.id
