"""CRM completions: a journey's task completed in the external CRM queue completes ours,
through TaskService (services/tasks.py), so its journey hears of it exactly once.

The webhook is thin (adapters/crm.py). For each `hs_task_status` → `COMPLETED` event the
CRM task is fetched: its `pitwall_task_id` names our task, `pitwall_outcome` the outcome
(empty: `done`), `hubspot_owner_id` who did it (the actor `crm:<owner>`). Then:

- our task open → completed by TaskService: stored, then the journey told
  (`task.completed`, event id `task-<id>-completed`) — `completed`;
- our task completed from the CRM before, with that outcome (a retried or duplicated
  webhook, a replayed event id) → TaskService again: nothing changes, and the journey, told
  again with the same event id, drops the repeat; a signal lost to a Temporal outage (we
  answered 503) arrives on the CRM's retry — `already_completed`;
- closed any other way (through /v1/tasks, by the journey, given up: the PATCH telling the
  CRM so comes back as a webhook) → nothing — `already_closed`;
- otherwise nothing, with why: `unknown_task` (no such CRM task, or no such task of
  ours), `not_ours` (no `pitwall_task_id`), `not_completed` (the CRM task is no longer
  completed: a late or out-of-order event), `invalid_outcome` (not an outcome code: our
  task stays open, its trail says so once), `ignored` (another event).

A CRM that does not answer the fetch raises CrmUnavailable, Temporal down
JourneysUnavailable: the receiver answers 503 and the CRM retries. Nothing of the
patient is read from the CRM, logged or echoed: ids, statuses and codes only.
"""

from __future__ import annotations

import asyncio
import re

import structlog
from temporalio.service import RPCError

from adapters.crm import COMPLETED, CrmClient, CrmEvent
from adapters.errors import PartnerRejected, PartnerUnavailable
from contract.tasks import CODE
from gateway.journeys import JourneyGateway
from services.callbacks import JourneysUnavailable
from services.tasks import TaskService
from store import Store
from store.tasks import OPEN, TaskAction, TaskClosed

log = structlog.get_logger("crm")

OWNER = re.compile(r"^[A-Za-z0-9_.@-]{1,40}$")
INVALID_OUTCOME = "crm_outcome_invalid"


class CrmUnavailable(Exception):
    """The CRM did not answer the fetch: the webhook should be retried."""


class CrmCompletions:
    def __init__(
        self, store: Store, crm: CrmClient, journeys: JourneyGateway | None = None
    ) -> None:
        self.store = store
        self.crm = crm
        self.journeys = journeys  # set when the app starts (Temporal connected)

    async def receive(self, events: list[CrmEvent]) -> list[str]:
        outcomes = []
        for event in events:
            outcome = await self._one(event) if event.completes_a_task else "ignored"
            log.info("crm.event", event_id=event.event_id, attempt=event.attempt,
                     source=event.change_source, outcome=outcome)  # fmt: skip
            outcomes.append(outcome)
        return outcomes

    async def _one(self, event: CrmEvent) -> str:
        try:
            remote = await self.crm.get(event.object_id)
        except (PartnerUnavailable, PartnerRejected) as err:
            log.warning("crm.fetch_failed", event_id=event.event_id, error=type(err).__name__)
            raise CrmUnavailable() from None
        if remote is None:
            return "unknown_task"
        if remote.reference is None:
            return "not_ours"
        if not remote.reference.isdigit() or int(remote.reference) >= 2**31:
            return "unknown_task"
        task_id = int(remote.reference)
        task = await asyncio.to_thread(self.store.tasks.get, task_id)
        if task is None:
            return "unknown_task"
        if task.crm_task_id is None:  # a push that never heard its id: keep it now
            await asyncio.to_thread(self.store.tasks.set_crm_id, task_id, remote.id)
        if remote.status != COMPLETED:
            return "not_completed"
        outcome = remote.outcome or "done"
        if not re.match(CODE, outcome):
            trail = await asyncio.to_thread(self.store.tasks.trail, task_id)
            if INVALID_OUTCOME not in [e.action for e in trail]:
                await asyncio.to_thread(self.store.tasks.note, task_id, INVALID_OUTCOME, "crm")
            log.warning("crm.invalid_outcome", event_id=event.event_id, task_id=task_id)
            return "invalid_outcome"
        if task.status not in OPEN:
            closer = await asyncio.to_thread(self.store.tasks.closed_by, task_id)
            if not (closer or "").startswith("crm") or task.outcome != outcome:
                return "already_closed"
        owner = remote.owner_id if remote.owner_id and OWNER.match(remote.owner_id) else None
        actor = f"crm:{owner}" if owner else "crm"
        service = TaskService(self.store, self.journeys)
        try:
            _, changed = await service.act_once(
                task_id, TaskAction("complete", outcome=outcome), actor
            )
        except TaskClosed:
            return "already_closed"  # closed another way meanwhile
        except RPCError as err:
            log.warning("crm.temporal_unavailable", event_id=event.event_id)
            raise JourneysUnavailable() from err
        return "completed" if changed else "already_completed"
