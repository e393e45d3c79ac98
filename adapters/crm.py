"""External work queue, shaped like HubSpot's CRM v3 tasks API, and its signed webhooks.

Calls (``Authorization: Bearer <private app token>``, JSON):

- create ``POST {base}/crm/v3/objects/tasks {"properties": {...}}`` → 201 the task
  ``{"id": "…", "properties": {...}, "createdAt", "updatedAt", "archived"}``. Like HubSpot
  the CRM does **not** deduplicate creates: a retried POST makes a second task, so callers
  look first (``find_by_reference``) and keep the id they got.
- update ``PATCH {base}/crm/v3/objects/tasks/{id} {"properties": {...}}`` → 200 the task.
- fetch ``GET {base}/crm/v3/objects/tasks/{id}?properties=a,b`` → 200 the task; 404 → None.
- search ``POST {base}/crm/v3/objects/tasks/search`` with ``filterGroups`` (``EQ`` on our
  custom property ``pitwall_task_id``) → ``{"total", "results": [...]}``. HubSpot's search
  index lags its writes by a few seconds: an empty answer right after a create is not
  proof that nothing was created.

Properties we write: ``hs_task_subject`` (the task's title), ``hs_task_body`` (a neutral
reference: our task id, its queue and a link to it in Pitwall), ``hs_task_status``
(``NOT_STARTED`` · ``IN_PROGRESS`` when made, ``COMPLETED`` when ours closes — our
``cancelled`` too, with its ``pitwall_outcome``, e.g. ``gave_up``; in between the status is
the CRM user's), ``hs_task_priority`` (``routine`` → ``MEDIUM``;
``urgent``, ``asap``, ``stat`` and any escalated task → ``HIGH``), ``hs_timestamp`` (the
due time, UTC, milliseconds), ``hs_task_type`` ``TODO``, and three custom properties the
portal must define: ``pitwall_task_id``, ``pitwall_role`` (the queue: our owner role; we
have no HubSpot owner ids, so ``hubspot_owner_id`` is the CRM user's to set) and
``pitwall_outcome`` (the outcome code the journey branches on). **No patient data**: not
the patient's name, number, words, drug or diagnosis, nor even the pseudonym.

Webhooks (``object.propertyChange`` on ``hs_task_status``): a JSON array of events
``{"eventId", "subscriptionType", "objectTypeId": "0-27", "objectId", "propertyName",
"propertyValue", "occurredAt", "attemptNumber", "changeSource", "sourceId"}``, signed
``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(app client secret, method + URI + body +
timestamp)) beside ``X-HubSpot-Request-Timestamp`` (Unix milliseconds; older than five
minutes is refused). The URI is the full URL the CRM posted to, with HubSpot's listed
percent-escapes decoded. Events are thin: the receiver fetches the task to read
``pitwall_task_id`` and ``pitwall_outcome``.

Errors: 4xx ``{"status": "error", "message", "category", "correlationId"}`` →
`PartnerRejected` (the category in the detail, never the message, which may echo what
was sent); 5xx, 429, timeouts → `PartnerUnavailable`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.errors import CallbackInvalid, PartnerRejected, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp

PARTNER = "crm"
TASKS = "/crm/v3/objects/tasks"
TASK_OBJECT_TYPE = "0-27"  # HubSpot's objectTypeId of tasks
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
TOLERANCE_MS = 5 * 60 * 1000

# Our custom properties (defined in the portal).
REFERENCE = "pitwall_task_id"
ROLE = "pitwall_role"
OUTCOME = "pitwall_outcome"
STATUS = "hs_task_status"
COMPLETED = "COMPLETED"
READ = (STATUS, REFERENCE, OUTCOME, ROLE, "hubspot_owner_id", "hs_task_priority", "hs_timestamp")
STATUSES = {"requested": "NOT_STARTED", "in-progress": "IN_PROGRESS"}
HIGH = frozenset({"urgent", "asap", "stat"})
# The percent-escapes HubSpot decodes in the URI before it signs (v3).
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


@dataclass(frozen=True)
class TaskFields:
    """What the CRM task says, from our task (nothing of the patient)."""

    reference: str  # our task id
    subject: str
    role: str
    priority: str  # ours: routine, urgent, asap, stat
    escalated: bool
    due_at: datetime
    status: str  # ours: requested, in-progress, completed, cancelled
    outcome: str | None
    link: str  # where the task is in Pitwall


@dataclass(frozen=True)
class CrmTask:
    id: str
    status: str | None
    reference: str | None
    outcome: str | None
    owner_id: str | None
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class CrmEvent:
    """One webhook event, as much as the receiver needs."""

    event_id: str
    subscription_type: str
    object_id: str
    object_type: str | None
    property_name: str | None
    property_value: str | None
    attempt: int
    change_source: str | None

    @property
    def completes_a_task(self) -> bool:
        return (
            self.subscription_type in ("object.propertyChange", "task.propertyChange")
            and self.object_type in (None, TASK_OBJECT_TYPE)
            and (self.property_name, self.property_value) == (STATUS, COMPLETED)
        )


def hubspot_time(at: datetime) -> str:
    """UTC ISO 8601 with milliseconds, as HubSpot writes datetimes."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def properties(fields: TaskFields, *, creating: bool = True) -> dict[str, str]:
    """The CRM task's properties for our task: its whole state, so a PATCH of them is the
    same each time. An update of an open task leaves the status alone (a CRM user may have
    started it) and so does the outcome (a user may be filling it in); closing sets both."""
    closed = fields.status not in STATUSES
    high = fields.escalated or fields.priority in HIGH
    props = {
        "hs_task_subject": fields.subject[:200],
        "hs_task_body": f"Pitwall task {fields.reference} for the {fields.role} queue: "
        f"{fields.link}",
        "hs_task_priority": "HIGH" if high else "MEDIUM",
        "hs_timestamp": hubspot_time(fields.due_at),
        "hs_task_type": "TODO",
        REFERENCE: fields.reference,
        ROLE: fields.role,
    }
    if closed:
        props.update({STATUS: COMPLETED, OUTCOME: fields.outcome or "done"})
    elif creating:
        props[STATUS] = STATUSES[fields.status]
    return props


def classify(response: httpx.Response, body: Any) -> tuple[str | None, str]:
    detail = f"HTTP {response.status_code}"
    if isinstance(body, Mapping) and isinstance(body.get("category"), str):
        detail += f"; category {body['category']}"
    return None, detail


def parse_task(body: Any, status: int) -> CrmTask:
    if not isinstance(body, Mapping) or not isinstance(body.get("id"), str | int):
        raise PartnerUnavailable(PARTNER, status, "malformed response: no task id")
    props = body.get("properties")
    if not isinstance(props, Mapping):
        raise PartnerUnavailable(PARTNER, status, "malformed response: no properties")

    def text(name: str) -> str | None:
        value = props.get(name)
        return str(value) if value not in (None, "") else None

    return CrmTask(
        id=str(body["id"]), status=text(STATUS), reference=text(REFERENCE),
        outcome=text(OUTCOME), owner_id=text("hubspot_owner_id"), properties=dict(props),
    )  # fmt: skip


class CrmClient(PartnerClient):
    def __init__(
        self,
        base_url: str,
        access_token: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = PartnerHttp(
            PARTNER, base_url, http=http, timeout=timeout, classify=classify,
            headers={"Authorization": f"Bearer {access_token}"} if access_token else None,
        )  # fmt: skip

    async def create(self, props: Mapping[str, str]) -> CrmTask:
        """A new CRM task, every time (the CRM does not deduplicate)."""
        response = await self._http.post(
            TASKS, idempotency_key=f"pitwall-task-{props.get(REFERENCE, '')}",
            json={"properties": dict(props)},
        )  # fmt: skip
        return parse_task(self._http.json(response), response.status_code)

    async def update(self, crm_id: str, props: Mapping[str, str]) -> CrmTask | None:
        """The task with these properties; None if the CRM has no such task."""
        if not crm_id.isdigit():
            return None
        try:
            response = await self._http.patch(f"{TASKS}/{crm_id}", json={"properties": dict(props)})
        except PartnerRejected as refused:
            if refused.status == 404:
                return None
            raise
        return parse_task(self._http.json(response), response.status_code)

    async def get(self, crm_id: str) -> CrmTask | None:
        """The task (its status, our reference and outcome, its owner); None if unknown."""
        if not crm_id.isdigit():
            return None
        try:
            response = await self._http.get(
                f"{TASKS}/{crm_id}", params={"properties": ",".join(READ)}
            )
        except PartnerRejected as refused:
            if refused.status == 404:
                return None
            raise
        return parse_task(self._http.json(response), response.status_code)

    async def find_by_reference(self, reference: str) -> list[CrmTask]:
        """Every CRM task carrying our task reference, oldest first."""
        query = {
            "filterGroups": [
                {"filters": [{"propertyName": REFERENCE, "operator": "EQ", "value": reference}]}
            ],
            "properties": list(READ),
            "sorts": [{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
            "limit": 10,
        }
        response = await self._http.post(
            f"{TASKS}/search", idempotency_key=f"search-{reference}", json=query
        )
        body = self._http.json(response)
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise PartnerUnavailable(PARTNER, response.status_code, "malformed response: results")
        return [parse_task(r, response.status_code) for r in results]


# -------------------------------------------------------------------------- webhooks


def signed_uri(uri: str) -> str:
    for escape, char in _DECODED.items():
        uri = uri.replace(escape, char).replace(escape.lower(), char)
    return uri


def signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3: base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    message = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    given: str | None,
    now_ms: int | None = None,
) -> bool:
    """True when `given` signs this request and its timestamp is under five minutes old."""
    if not secret or not timestamp or not given:
        return False
    try:
        ts = int(timestamp.strip())
    except ValueError:
        return False
    current = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(current - ts) > TOLERANCE_MS:
        return False
    expected = signature(secret, method, uri, body, timestamp.strip())
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_webhook(body: bytes) -> list[CrmEvent]:
    """The events of one webhook request; CallbackInvalid names what is wrong (never a
    value)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackInvalid("body is not JSON") from None
    if not isinstance(data, list):
        raise CallbackInvalid("body is not a JSON array of events")
    events = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise CallbackInvalid(f"event {i} is not an object")
        for name in ("eventId", "subscriptionType", "objectId"):
            if not isinstance(item.get(name), str | int) or isinstance(item.get(name), bool):
                raise CallbackInvalid(f"event {i}: {name} missing")
        attempt = item.get("attemptNumber", 0)
        event = CrmEvent(
            event_id=str(item["eventId"]), subscription_type=str(item["subscriptionType"]),
            object_id=str(item["objectId"]), object_type=_text(item.get("objectTypeId")),
            property_name=_text(item.get("propertyName")),
            property_value=_text(item.get("propertyValue")),
            attempt=attempt if isinstance(attempt, int) else 0,
            change_source=_text(item.get("changeSource")),
        )  # fmt: skip
        events.append(event)
    return events


__all__ = ["CrmClient", "CrmEvent", "CrmTask", "TaskFields", "parse_webhook", "properties"]
