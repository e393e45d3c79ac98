"""In-memory sandbox state: scenarios, received requests, messages, callbacks, delivery."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import itertools
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from sandbox.scenario import Scenario

TIMESTAMP_HEADER = "X-Pitwall-Timestamp"
SIGNATURE_HEADER = "X-Pitwall-Signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"

# Delays between delivery attempts of one callback; the schedule covers ~10 minutes.
RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1, 2, 4, 8, 15, 30, 60, 60, 60, 60, 60, 60, 60, 60, 60)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None = None) -> str:
    return (ts or utcnow()).isoformat().replace("+00:00", "Z")


def pitwall_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature, by Twilio's own reference implementation. `url` is the exact
    URL requested, without embedded credentials (callers strip them first)."""
    return str(RequestValidator(token).compute_signature(url, dict(params)))


TWIML_TYPES = ("text/xml", "application/xml")


def twiml_messages(response: httpx.Response) -> list[tuple[str, dict[str, str]]]:
    """The <Message> verbs of a TwiML answer to an inbound text: (body, attributes) each.

    Like Twilio: only an XML answer (text/xml, application/xml) whose root is <Response>
    is TwiML; anything else (JSON, empty, malformed XML) sends nothing.
    """
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in TWIML_TYPES or not response.content.strip():
        return []
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        return []
    if root.tag != "Response":
        return []
    found = []
    for verb in root.findall("Message"):
        parts = [verb.text or ""]
        parts += [body.text or "" for body in verb.findall("Body")]
        text = "".join(parts).strip()
        if text:
            found.append((text, dict(verb.attrib)))
    return found


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`https://user:pass@host/p` → (`https://host/p`, (user, pass)); Twilio signs the URL
    without the credentials and sends them as basic auth when the server asks for them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (parts.username or "", parts.password or "")


def without_password(url: str) -> str:
    bare, creds = split_credentials(url)
    if creds is None:
        return url
    scheme, _, rest = bare.partition("://")
    return f"{scheme}://{creds[0]}:***@{rest}"


@dataclass
class StoredResponse:
    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    service: str
    operation: str
    patient_ref: str | None
    journey_ref: str | None
    idempotency_key: str
    attempts: int
    first_at: datetime
    summary: dict[str, Any] = field(default_factory=dict)
    response: StoredResponse | None = None

    def public(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "patient_ref": self.patient_ref,
            "journey_ref": self.journey_ref,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "first_at": iso(self.first_at),
            "status": self.response.status if self.response else None,
            "summary": self.summary,
        }


@dataclass
class Callback:
    """One callback to deliver: the body (and signature scheme) is fixed at creation."""

    service: str
    type: str
    event_id: str
    url: str
    patient_ref: str | None
    journey_ref: str | None
    body: bytes = b""
    content_type: str = "application/json"
    form: dict[str, str] | None = None  # Twilio callbacks: form-encoded, Twilio-signed
    # An inbound text: a TwiML <Message> in the receiver's answer is sent as a reply SMS.
    twiml_replies: bool = False


@dataclass
class CallbackRecord:
    seq: int
    callback: Callback
    copy: int
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered: bool = False
    given_up: bool = False
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        cb = self.callback
        return {
            "seq": self.seq,
            "service": cb.service,
            "type": cb.type,
            "event_id": cb.event_id,
            "url": without_password(cb.url),
            "patient_ref": cb.patient_ref,
            "journey_ref": cb.journey_ref,
            "copy": self.copy,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered": self.delivered,
            "given_up": self.given_up,
            "first_attempt_at": iso(self.first_attempt_at) if self.first_attempt_at else None,
            "last_attempt_at": iso(self.last_attempt_at) if self.last_attempt_at else None,
        }


class SandboxState:
    def __init__(
        self, callback_url: str, secret: str, twilio_auth_token: str, callback_api_key: str = ""
    ) -> None:
        self.callback_url = callback_url.rstrip("/")
        self.secret = secret
        self.twilio_auth_token = twilio_auth_token
        # The platform's API key for partner callbacks: Bearer on JSON callbacks, and the
        # basic-auth password of the inbound-SMS webhook URL (as configured at Twilio).
        self.callback_api_key = callback_api_key
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS
        self.http: httpx.AsyncClient | None = None
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        for task in list(getattr(self, "tasks", ())):
            task.cancel()
        self.tasks: set[asyncio.Task[None]] = set()
        self.scenarios: dict[str, Scenario] = {}
        self.outage_started: dict[tuple[str, str], float] = {}
        self.received: dict[tuple[str, str], Received] = {}
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.messages: list[dict[str, Any]] = []
        # Twilio resources (Messages and Calls, by sid) as the REST API shows them now.
        self.twilio: dict[str, dict[str, Any]] = {}
        # SendGrid Email Activity rows, by X-Message-Id.
        self.email_activity: dict[str, dict[str, Any]] = {}
        self.callbacks: list[CallbackRecord] = []
        # Callback chains not yet played out, per patient: tests wait for 0 (a sync
        # point) before they check that nothing more was sent.
        self.scheduled: collections.Counter[str | None] = collections.Counter()
        self.pas: dict[str, dict[str, Any]] = {}  # PA number -> record
        self._seq = itertools.count(1)
        self.clocks = SteppedClocks()

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.http is not None:
            await self.http.aclose()

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=5.0)
        return self.http

    def spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ------------------------------------------------------------------ scenarios
    def scenario(self, patient_ref: str | None) -> Scenario:
        if patient_ref and patient_ref in self.scenarios:
            return self.scenarios[patient_ref]
        return Scenario()

    def set_scenario(self, patient_ref: str, scenario: Scenario) -> None:
        self.scenarios[patient_ref] = scenario
        for key in [k for k in self.outage_started if k[0] == patient_ref]:
            del self.outage_started[key]

    def outage_status(self, patient_ref: str | None, service: str) -> int | None:
        """The error status to answer now, if this patient's service is in an outage."""
        if not patient_ref:
            return None
        outage = self.scenario(patient_ref).outage
        if outage is None or outage.service != service:
            return None
        started = self.outage_started.setdefault((patient_ref, service), time.monotonic())
        if time.monotonic() - started < outage.seconds:
            return outage.status
        return None

    # ------------------------------------------------------------------ idempotency
    def lock(self, service: str, key: str) -> asyncio.Lock:
        return self.locks.setdefault((service, key), asyncio.Lock())

    def new_id(self, prefix: str, nbytes: int = 16) -> str:
        return prefix + uuid.uuid4().hex[: nbytes * 2]

    # ------------------------------------------------------------------ TwiML replies
    def record_replies(self, cb: Callback, response: httpx.Response) -> None:
        """Twilio sends each <Message> of the webhook's TwiML answer back to the sender:
        from the number texted (the inbound To) to the texter (the inbound From)."""
        form = cb.form or {}
        for text, attrs in twiml_messages(response):
            sid = "SM" + uuid.uuid4().hex
            now = utcnow()
            account_sid = form.get("AccountSid", "")
            to = attrs.get("to") or form.get("From", "")
            sender = attrs.get("from") or form.get("To", "")
            self.twilio[sid] = {
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": sender,
                "body": text,
                "status": "sent",
                "num_segments": str(max(1, -(-len(text) // 153))),
                "direction": "outbound-reply",
                "api_version": "2010-04-01",
                "date_created": format_datetime(now),
                "date_updated": format_datetime(now),
                "date_sent": format_datetime(now),
                "error_code": None,
                "error_message": None,
                "price": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
                "_created": now,
                "_sent": now,
            }
            self.messages.append(
                {
                    "channel": "sms",
                    "id": sid,
                    "direction": "outbound-reply",
                    "to": to,
                    "from": sender,
                    "body": text,
                    "status": "sent",
                    "error_code": None,
                    "in_reply_to": form.get("MessageSid"),
                    "patient_ref": cb.patient_ref,
                    "journey_ref": cb.journey_ref,
                    "idempotency_key": None,
                    "at": iso(now),
                }
            )

    # ------------------------------------------------------------------ callbacks
    def schedule(
        self,
        steps: Sequence[tuple[float, Callback | Callable[[], None]]],
        *,
        duplicate: bool = False,
    ) -> None:
        """Deliver callbacks in list order, each no earlier than its offset (seconds).

        Each callback's first attempt completes before the next one starts, so the order
        the receiver sees is the list order; failed deliveries retry in the background.
        A step may also be a plain function (a resource's status change), run in its turn.
        """

        patients = {c.patient_ref for _, c in steps if isinstance(c, Callback)}
        self.scheduled.update(patients)
        stepped = next(
            (p for p in patients if p is not None and self.scenario(p).clock == "stepped"), None
        )
        clock = self.clocks.chain(stepped) if stepped is not None else None

        async def chain() -> None:
            try:
                await play()
            finally:
                self.scheduled.subtract(patients)
                if clock is not None:
                    clock.done()

        async def play() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for offset, callback in steps:
                if clock is not None:
                    await clock.until(offset)
                elif (delay := start + offset - loop.time()) > 0:
                    await asyncio.sleep(delay)
                if not isinstance(callback, Callback):
                    callback()
                    continue
                for copy in range(1, 3 if duplicate else 2):
                    record = CallbackRecord(seq=next(self._seq), callback=callback, copy=copy)
                    self.callbacks.append(record)
                    if not await self._attempt(record):
                        self.spawn(self._retry(record))

        self.spawn(chain())

    async def _retry(self, record: CallbackRecord) -> None:
        for delay in self.retry_delays:
            await asyncio.sleep(delay)
            if await self._attempt(record):
                return
        record.given_up = True

    async def _attempt(self, record: CallbackRecord) -> bool:
        cb = record.callback
        record.attempts += 1
        record.last_attempt_at = utcnow()
        record.first_attempt_at = record.first_attempt_at or record.last_attempt_at
        headers = {"Content-Type": cb.content_type, "User-Agent": "pitwall-sandbox/1"}
        url, basic = cb.url, None
        if cb.form is not None:
            url, basic = split_credentials(cb.url)
            body = urlencode(cb.form).encode()
            signature = twilio_signature(self.twilio_auth_token, url, cb.form)
            headers[TWILIO_SIGNATURE_HEADER] = signature
            headers["I-Twilio-Idempotency-Token"] = cb.event_id
        else:
            body = cb.body
            timestamp = str(int(time.time()))  # re-signed per attempt; same body and id
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = pitwall_signature(self.secret, timestamp, body)
            if self.callback_api_key:
                headers["Authorization"] = f"Bearer {self.callback_api_key}"
        try:
            response = await self.client().post(url, content=body, headers=headers)
            challenge = response.headers.get("www-authenticate", "").lower()
            if basic is not None and response.status_code == 401 and challenge.startswith("basic"):
                # Like Twilio: credentials from the URL only once the server asks for them.
                auth = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
                response = await self.client().post(
                    url, content=body, headers={**headers, "Authorization": auth}
                )
        except httpx.HTTPError as exc:
            record.last_status = None
            record.last_error = type(exc).__name__
            return False
        record.last_status = response.status_code
        record.last_error = None
        record.delivered = 200 <= response.status_code < 300
        if record.delivered and cb.twiml_replies:
            self.record_replies(cb, response)
        return record.delivered


Handler = Callable[
    [Scenario], Awaitable[tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]]
]


class SteppedClocks:
    """Each stepped patient's clock (journey time), moved only by a driver.

    A callback chain of a stepped patient counts its offsets from the patient's clock
    when it was scheduled, and waits until the clock has reached each one. `advance`
    moves a clock and returns once every chain due by then has played its due steps
    (each delivery's first attempt answered), so the driver knows what was sent.
    """

    def __init__(self) -> None:
        self.now: dict[str, datetime] = {}
        self._chains: dict[str, set[_SteppedChain]] = collections.defaultdict(set)
        self._changed = asyncio.Condition()

    def clock(self, patient_ref: str) -> datetime:
        return self.now.get(patient_ref) or utcnow()

    def chain(self, patient_ref: str) -> _SteppedChain:
        chain = _SteppedChain(self, patient_ref, self.clock(patient_ref))
        self._chains[patient_ref].add(chain)
        return chain

    def next_due(self, patient_ref: str) -> datetime | None:
        due = [c.due for c in self._chains[patient_ref] if c.due is not None]
        return min(due) if due else None

    def busy(self, patient_ref: str) -> bool:
        """A chain is playing a step (or has not reached its first wait yet)."""
        return any(c.due is None for c in self._chains[patient_ref])

    async def advance(self, patient_ref: str, to: datetime) -> None:
        self.now[patient_ref] = max(to, self.now.get(patient_ref, to))
        await self.notify()
        async with self._changed:
            await self._changed.wait_for(lambda: self._settled(patient_ref))

    def _settled(self, patient_ref: str) -> bool:
        now = self.now[patient_ref]
        return not any(c.due is None or c.due <= now for c in self._chains[patient_ref])

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class _SteppedChain:
    def __init__(self, clocks: SteppedClocks, patient_ref: str, origin: datetime) -> None:
        self.clocks, self.patient_ref, self.origin = clocks, patient_ref, origin
        self.due: datetime | None = None  # None: playing a step

    async def until(self, offset: float) -> None:
        due = self.origin + timedelta(seconds=offset)
        clock = self.clocks.now.get(self.patient_ref)
        if clock is not None and due <= clock:
            return
        self.due = due
        await self.clocks.notify()
        async with self.clocks._changed:
            await self.clocks._changed.wait_for(
                lambda: (
                    self.clocks.now.get(self.patient_ref, due) >= due
                    and self.clocks.now.get(self.patient_ref) is not None
                )
            )
        self.due = None

    def done(self) -> None:
        self.clocks._chains[self.patient_ref].discard(self)
        asyncio.get_running_loop().create_task(self.clocks.notify())
