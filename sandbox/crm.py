"""A CRM work queue shaped like HubSpot's CRM v3 tasks API, and its signed webhooks.

Tasks live in memory. Like HubSpot, a create is never deduplicated (a retried POST is a
second task), search sees a task only `search_lag_seconds` after its creation (HubSpot's
index lags its writes), and every change of `hs_task_status` (through the API or a user)
posts an `object.propertyChange` webhook signed `X-HubSpot-Signature-v3` with the
sandbox's webhook secret (HubSpot: the app's client secret). See sandbox/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox.state import Callback, CallbackRecord, SandboxState, iso, utcnow

TASKS = "/crm/v3/objects/tasks"
STATUSES = frozenset({"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"})
PRIORITIES = frozenset({"", "NONE", "LOW", "MEDIUM", "HIGH"})
PROPERTIES = frozenset(
    {
        "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority", "hs_timestamp",
        "hs_task_type", "hs_task_reminders", "hubspot_owner_id",
        # the portal's custom properties (Pitwall's)
        "pitwall_task_id", "pitwall_role", "pitwall_outcome",
    }
)  # fmt: skip
READ_ONLY = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id", "hs_task_completion_date")
OPERATORS = frozenset({"EQ", "NEQ", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN"})
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
PORTAL_ID = 24681357


class Behaviour(BaseModel):
    """How the sandbox CRM behaves now (`PUT /crm/_sandbox/behaviour`)."""

    model_config = ConfigDict(extra="forbid")

    outage_seconds: float = Field(0.0, ge=0, description="From the PUT: every API call fails.")
    outage_status: int = Field(503, ge=400, le=599)
    search_lag_seconds: float = Field(0.0, ge=0, description="A new task is searchable after.")
    response_delay_seconds: float = Field(
        0.0, ge=0, description="Create: processed at once, answered this much later."
    )
    duplicate_webhooks: bool = Field(False, description="Every webhook posted twice.")
    webhook_url: str | None = Field(None, description="Default: {callback_url}/v1/webhooks/crm")


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str | None = None
    owner: str = "7001"


@dataclass
class CrmTask:
    id: str
    properties: dict[str, str]
    created: datetime
    updated: datetime
    created_mono: float
    webhooks: list[int] = field(default_factory=list)  # eventIds sent for it

    def public(self, names: list[str] | None = None) -> dict[str, Any]:
        props = dict(self.properties)
        if names is not None:
            wanted = set(names) | {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
            props = {k: v for k, v in props.items() if k in wanted}
        return {
            "id": self.id, "properties": props, "createdAt": iso(self.created),
            "updatedAt": iso(self.updated), "archived": False,
        }  # fmt: skip


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _error(status: int, category: str, message: str, **extra: Any) -> Response:
    body = {
        "status": "error", "message": message, "correlationId": str(uuid.uuid4()),
        "category": category, **extra,
    }  # fmt: skip
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


class CrmState:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        # Ids are never reused, even across a reset (a receiver may remember them).
        self.ids = itertools.count(51000000001)
        self.event_ids = itertools.count(4100000001)
        self.reset()

    def reset(self) -> None:
        self.tasks: dict[str, CrmTask] = {}
        self.behaviour = Behaviour()
        self.behaviour_since = time.monotonic()

    def outage(self) -> int | None:
        b = self.behaviour
        if b.outage_seconds and time.monotonic() - self.behaviour_since < b.outage_seconds:
            return b.outage_status
        return None

    # ------------------------------------------------------------------ changes
    def change(self, task: CrmTask, props: dict[str, str], source: str, source_id: str) -> None:
        """Apply properties; a change of hs_task_status posts a webhook."""
        before = task.properties.get("hs_task_status")
        now = utcnow()
        task.properties.update(props)
        after = task.properties.get("hs_task_status")
        if after == "COMPLETED" and before != "COMPLETED":
            task.properties["hs_task_completion_date"] = _ms(now)
        elif after != "COMPLETED":
            task.properties.pop("hs_task_completion_date", None)
        task.properties["hs_lastmodifieddate"] = iso(now)
        task.updated = now
        if before != after and after is not None:
            self.webhook(task, "hs_task_status", after, source, source_id)

    # ------------------------------------------------------------------ webhooks
    def webhook(self, task: CrmTask, name: str, value: str, source: str, source_id: str) -> None:
        event_id = next(self.event_ids)
        task.webhooks.append(event_id)
        event = {
            "eventId": event_id, "subscriptionId": 1, "portalId": PORTAL_ID, "appId": 1,
            "occurredAt": int(time.time() * 1000), "subscriptionType": "object.propertyChange",
            "attemptNumber": 0, "objectId": int(task.id), "objectTypeId": "0-27",
            "propertyName": name, "propertyValue": value, "changeSource": source,
            "sourceId": source_id,
        }  # fmt: skip
        url = self.behaviour.webhook_url or f"{self.state.callback_url}/v1/webhooks/crm"
        for copy in range(1, 3 if self.behaviour.duplicate_webhooks else 2):
            cb = Callback(
                service="crm", type="crm.task.propertyChange", event_id=str(event_id), url=url,
                patient_ref=None, journey_ref=None, body=json.dumps([event]).encode(),
            )  # fmt: skip
            record = CallbackRecord(seq=next(self.state._seq), callback=cb, copy=copy)
            self.state.callbacks.append(record)
            self.state.spawn(self.deliver(record, event))

    async def deliver(self, record: CallbackRecord, event: dict[str, Any]) -> None:
        delays = iter(self.state.retry_delays)
        while True:
            if await self._attempt(record, event):
                return
            delay = next(delays, None)
            if delay is None:
                record.given_up = True
                return
            await asyncio.sleep(delay)

    async def _attempt(self, record: CallbackRecord, event: dict[str, Any]) -> bool:
        """One POST, signed as HubSpot signs (v3); `attemptNumber` counts from 0."""
        event = {**event, "attemptNumber": record.attempts}
        record.attempts += 1
        record.last_attempt_at = utcnow()
        record.first_attempt_at = record.first_attempt_at or record.last_attempt_at
        body = json.dumps([event]).encode()
        timestamp = str(int(time.time() * 1000))
        url = record.callback.url
        headers = {
            "Content-Type": "application/json", "User-Agent": "pitwall-sandbox-crm/1",
            SIGNATURE_HEADER: hubspot_signature(self.state.secret, "POST", url, body, timestamp),
            TIMESTAMP_HEADER: timestamp, "X-HubSpot-Signature-Version": "v3",
        }  # fmt: skip
        if self.state.callback_api_key:
            headers["Authorization"] = f"Bearer {self.state.callback_api_key}"
        try:
            response = await self.state.client().post(url, content=body, headers=headers)
        except Exception as exc:  # connection refused, timeout: retried
            record.last_status, record.last_error = None, type(exc).__name__
            return False
        record.last_status, record.last_error = response.status_code, None
        record.delivered = 200 <= response.status_code < 300
        return record.delivered

    # ------------------------------------------------------------------ search
    def searchable(self, task: CrmTask) -> bool:
        return time.monotonic() - task.created_mono >= self.behaviour.search_lag_seconds


def _matches(task: CrmTask, f: dict[str, Any]) -> bool:
    value = task.properties.get(str(f.get("propertyName")))
    op = f.get("operator")
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op == "IN":
        return value in [str(v) for v in f.get("values") or []]
    wanted = str(f.get("value"))
    return value == wanted if op == "EQ" else value != wanted


def _timestamp(raw: str) -> bool:
    if raw.isdigit():
        return True
    try:
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _invalid(props: Any, *, creating: bool) -> Response | None:
    """HubSpot's 400 for properties it cannot take, or None."""
    if not isinstance(props, dict):
        return _error(400, "VALIDATION_ERROR", "Invalid input JSON: properties missing")
    errors = []

    def error(message: str, code: str, **context: Any) -> None:
        errors.append({"message": message, "code": code, **context})

    for name, value in props.items():
        if name not in PROPERTIES:
            error(f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST",
                  context={"propertyName": [name]})  # fmt: skip
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            error(f'Property "{name}" is not a value', "INVALID_TYPE")
    status = props.get("hs_task_status")
    if status is not None and status not in STATUSES:
        error("hs_task_status is not an allowed option", "INVALID_OPTION")
    if props.get("hs_task_priority") not in (None, *PRIORITIES):
        error("hs_task_priority is not an allowed option", "INVALID_OPTION")
    stamp = props.get("hs_timestamp")
    if (creating and stamp is None) or (stamp is not None and not _timestamp(str(stamp))):
        error("hs_timestamp is required and must be a date", "INVALID_DATE")
    if errors:
        return _error(400, "VALIDATION_ERROR", "Property values were not valid", errors=errors)
    return None


def router(state: SandboxState) -> APIRouter:
    crm = CrmState(state)
    r = APIRouter(tags=["crm"])

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return None

    def refused(request: Request) -> Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        outage = crm.outage()
        if outage is not None:
            return _error(outage, "INTERNAL_ERROR", "internal error")
        return None

    def unknown(task_id: str) -> Response:
        return _error(404, "OBJECT_NOT_FOUND", f"Object not found. objectId are usually numeric. "
                      f"{task_id}")  # fmt: skip

    @r.post(TASKS)
    async def create(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        data = await body_of(request)
        props = data.get("properties") if isinstance(data, dict) else None
        if (bad := _invalid(props, creating=True)) is not None:
            return bad
        assert isinstance(props, dict)
        now = utcnow()
        task_id = str(next(crm.ids))
        values = {k: str(v) for k, v in props.items()}
        values.setdefault("hs_task_status", "NOT_STARTED")
        values.update(hs_createdate=iso(now), hs_lastmodifieddate=iso(now), hs_object_id=task_id)
        if values["hs_task_status"] == "COMPLETED":
            values["hs_task_completion_date"] = _ms(now)
        task = CrmTask(task_id, values, now, now, time.monotonic())
        crm.tasks[task_id] = task  # never deduplicated, like HubSpot
        if crm.behaviour.response_delay_seconds:
            await asyncio.sleep(crm.behaviour.response_delay_seconds)
        return Response(json.dumps(task.public()), status_code=201, media_type="application/json")

    @r.get(TASKS + "/{task_id}")
    async def fetch(task_id: str, request: Request, properties: str | None = None) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        task = crm.tasks.get(task_id)
        if task is None:
            return unknown(task_id)
        names = [p for p in properties.split(",") if p] if properties else None
        return Response(json.dumps(task.public(names)), media_type="application/json")

    @r.patch(TASKS + "/{task_id}")
    async def update(task_id: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        task = crm.tasks.get(task_id)
        if task is None:
            return unknown(task_id)
        data = await body_of(request)
        props = data.get("properties") if isinstance(data, dict) else None
        if (bad := _invalid(props, creating=False)) is not None:
            return bad
        assert isinstance(props, dict)
        crm.change(task, {k: str(v) for k, v in props.items()}, "API", "app:sandbox")
        return Response(json.dumps(task.public()), media_type="application/json")

    @r.post(TASKS + "/search")
    async def search(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        data = await body_of(request)
        if not isinstance(data, dict):
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
        groups = data.get("filterGroups") or []
        limit, after = data.get("limit", 10), data.get("after", "0")
        valid = (
            isinstance(groups, list)
            and all(isinstance(g, dict) and isinstance(g.get("filters"), list) for g in groups)
            and all(isinstance(f, dict) and f.get("operator") in OPERATORS
                    for g in groups for f in g["filters"])
            and isinstance(limit, int) and 1 <= limit <= 200 and str(after).isdigit()
        )  # fmt: skip
        if not valid:
            return _error(400, "VALIDATION_ERROR", "There was a problem with the request.")
        found = [
            t for t in crm.tasks.values()
            if crm.searchable(t)
            and (not groups or any(all(_matches(t, f) for f in g["filters"]) for g in groups))
        ]  # fmt: skip
        for sort in reversed(data.get("sorts") or []):
            if isinstance(sort, dict):
                name = str(sort.get("propertyName", "hs_createdate"))
                found.sort(key=lambda t, n=name: t.properties.get(n, ""),  # type: ignore[misc]
                           reverse=sort.get("direction") == "DESCENDING")  # fmt: skip
        start = int(after)
        names = data.get("properties")
        page = found[start : start + limit]
        result: dict[str, Any] = {
            "total": len(found),
            "results": [t.public(names if isinstance(names, list) else None) for t in page],
        }
        if start + limit < len(found):
            result["paging"] = {"next": {"after": str(start + limit)}}
        return Response(json.dumps(result), media_type="application/json")

    # ------------------------------------------------------------------ control
    @r.put("/crm/_sandbox/behaviour")
    async def put_behaviour(behaviour: Behaviour) -> dict[str, Any]:
        crm.behaviour, crm.behaviour_since = behaviour, time.monotonic()
        return behaviour.model_dump()

    @r.get("/crm/_sandbox/behaviour")
    async def get_behaviour() -> dict[str, Any]:
        return crm.behaviour.model_dump()

    @r.get("/crm/_sandbox/tasks")
    async def list_tasks(pitwall_task_id: str | None = None) -> list[dict[str, Any]]:
        """Every task (search lag aside), with the webhooks its changes posted."""
        return [
            {**t.public(), "webhook_event_ids": list(t.webhooks)}
            for t in crm.tasks.values()
            if pitwall_task_id is None or t.properties.get("pitwall_task_id") == pitwall_task_id
        ]

    @r.post("/crm/_sandbox/tasks/{task_id}/complete")
    async def complete(task_id: str, done: Completion) -> Response:
        """A CRM user completes the task (setting its outcome): the webhook goes out."""
        task = crm.tasks.get(task_id)
        if task is None:
            return unknown(task_id)
        if task.properties.get("hs_task_status") == "COMPLETED":
            return Response(json.dumps({"changed": False, **task.public()}),
                            media_type="application/json")  # fmt: skip
        props = {"hubspot_owner_id": done.owner, "hs_task_status": "COMPLETED"}
        if done.outcome is not None:
            props["pitwall_outcome"] = done.outcome
        crm.change(task, props, "CRM_UI", f"userId:{done.owner}")
        return Response(json.dumps({"changed": True, **task.public()}),
                        media_type="application/json")  # fmt: skip

    @r.post("/crm/_sandbox/reset")
    async def reset() -> dict[str, Any]:
        crm.reset()
        return {"reset": True, "at": datetime.now(UTC).isoformat()}

    return r
