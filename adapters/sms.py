"""SMS gateway adapter, Twilio-shaped.

Send: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
``From``, ``Body``, ``StatusCallback`` (plus ``PitwallJourneyRef`` / ``PitwallPatientRef``,
pseudonymous, which a real Twilio ignores and the sandbox keys scenarios on), HTTP basic
auth ``AccountSid:AuthToken``. Answer 201 JSON ``{"sid": "SM…", "status": "queued", …}``;
errors 4xx JSON ``{"code": 21211, "message", "more_info", "status"}`` mapped to stable
codes (``sms.invalid_number`` …) — the message text is dropped (it echoes the number).

Callbacks (form-encoded, ``X-Twilio-Signature`` over the exact callback URL):

- status: ``MessageSid``, ``MessageStatus`` (also ``SmsSid`` / ``SmsStatus``), ``To``,
  ``From``, ``AccountSid``, ``ApiVersion``, ``ErrorCode`` on failure. Twilio assigns
  no event id, so event_id = ``"{MessageSid}:{MessageStatus}"``: a duplicate delivery of the
  same status has the same id, each new status a new one.
- inbound reply: ``MessageSid``, ``From``, ``To``, ``Body``, ``AccountSid``; event_id =
  the inbound MessageSid. The webhook's answer may be TwiML
  (``<Response><Message>…</Message></Response>``, ``text/xml``): Twilio texts each
  ``<Message>`` back to the sender.

Receipt ``ErrorCode`` (on ``undelivered`` / ``failed``; the event's ``data.error_code``,
a string; see ``RECEIPT_ERRORS``):

- ``30003`` unreachable destination handset (off, out of coverage): transient, retry later.
- ``30005`` unknown destination handset (the number does not exist): do not retry.
- ``30006`` landline or unreachable carrier: the number cannot take SMS; do not retry.
- ``30007`` carrier filtering (flagged as spam / unregistered traffic): do not resend as is.
- ``30008`` unknown error (the sandbox's default for ``failed``).
- ``21610`` the recipient texted STOP at the carrier: opted out; never text again until START.

Twilio does not deduplicate sends (``Idempotency-Key`` is ignored): after a crash between
send and answer, look first. ``find_sent(to, body, since)`` lists Messages ``To`` the
number with ``DateSent>=`` since's (UTC) date and keeps those whose echoed ``body`` equals
ours and whose ``date_created`` is at or after ``since`` (to the second: Twilio's dates
have no fractions) — Twilio has no client reference field, so the body is the match key.
A message still ``queued`` has no ``date_sent`` and such a filter does not return it yet;
a trial account's body prefix breaks the match. ``fetch(sid)`` reads one message's status
and ErrorCode.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from adapters._common import now, parse_time
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.http import ErrorClassifier, PartnerClient, PartnerHttp
from domain.partners import PartnerEvent, SmsRequest, SmsResult

PARTNER = "sms"
STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "canceled",
        "receiving",
        "received",
    }
)
TERMINAL_FAILURES = frozenset({"undelivered", "failed", "canceled"})

TWILIO_ERROR_CODES = {
    20003: "sms.auth_failed",
    21211: "sms.invalid_number",
    21214: "sms.invalid_number",
    21614: "sms.invalid_number",
    21612: "sms.unreachable",
    21408: "sms.region_not_permitted",
    21602: "sms.invalid_request",
    21604: "sms.invalid_request",
    21603: "sms.invalid_request",
    21606: "sms.invalid_sender",
    21610: "sms.opted_out",
    21617: "sms.body_too_long",
}


# Receipt ErrorCodes (status callbacks, fetched messages) → what they mean for us.
RECEIPT_ERRORS = {
    "30003": "unreachable",  # handset off / out of coverage: transient
    "30005": "unknown_number",
    "30006": "landline",  # landline or unreachable carrier: cannot take SMS
    "30007": "carrier_filtered",
    "30008": "unknown_error",
    "21610": "opted_out",  # STOP at the carrier
}
# Pages of a Messages / Calls list read at most when reconciling.
MAX_PAGES = 10


def twilio_time(value: Any) -> datetime | None:
    """Twilio's RFC 2822 dates (``date_created``…) → aware UTC; None when absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def since_floor(since: datetime) -> datetime:
    """``since`` as aware UTC, to the whole second (Twilio's dates have no fractions)."""
    aware = since if since.tzinfo else since.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


async def list_pages(
    http: PartnerHttp, path: str, params: Mapping[str, str], key: str
) -> list[Mapping[str, Any]]:
    """Every resource of a Twilio list (``key``: "messages", "calls"), following
    ``next_page_uri`` up to MAX_PAGES pages."""
    found: list[Mapping[str, Any]] = []
    next_path: str | None = path
    next_params: Mapping[str, str] | None = params
    for _ in range(MAX_PAGES):
        if not next_path:
            break
        response = await http.get(next_path, params=next_params)
        page = http.json(response)
        items = page.get(key) if isinstance(page, Mapping) else None
        if not isinstance(items, list):
            raise PartnerUnavailable(
                http.partner, response.status_code, f"malformed list: no {key}"
            )
        found.extend(item for item in items if isinstance(item, Mapping))
        uri = page.get("next_page_uri")
        next_path, next_params = (uri, None) if isinstance(uri, str) and uri else (None, None)
    return found


def _sms_result(resource: Any, status_code: int) -> SmsResult:
    sid = resource.get("sid") if isinstance(resource, Mapping) else None
    status = resource.get("status") if isinstance(resource, Mapping) else None
    if not isinstance(sid, str) or not sid or not isinstance(status, str):
        raise PartnerUnavailable(PARTNER, status_code, "malformed response: no sid")
    code = resource.get("error_code")
    error_code = str(code) if isinstance(code, int | str) and str(code) else None
    return SmsResult(message_sid=sid, status=status, error_code=error_code)


def twilio_classifier(codes: Mapping[int, str]) -> ErrorClassifier:
    """Twilio's JSON error `code` → our stable code (its message is dropped: it may echo
    the number)."""

    def classify(response: httpx.Response, body: Any) -> tuple[str | None, str]:
        detail = f"HTTP {response.status_code}"
        code = body.get("code") if isinstance(body, Mapping) else None
        if isinstance(code, int) and not isinstance(code, bool):
            return codes.get(code), f"{detail}; Twilio error {code}"
        return None, detail

    return classify


def _form_value(form: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = form.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def parse_status_callback(form: Mapping[str, str], journey_ref: str | None = None) -> PartnerEvent:
    """A delivery status callback → ``sms.status``.

    Real Twilio inbound texts also carry ``SmsStatus=received``; such a form is an inbound
    reply and is parsed as one (``sms.reply``), so a receiver that routes on the presence of
    ``SmsStatus`` still gets replies right.
    """
    what = "SMS status callback"
    if is_inbound(form) and _form_value(form, "From") and "Body" in form:
        return parse_inbound(form, journey_ref)
    sid = _form_value(form, "MessageSid", "SmsSid")
    status = _form_value(form, "MessageStatus", "SmsStatus")
    if not sid:
        raise CallbackInvalid(f"{what}: missing MessageSid")
    if not status:
        raise CallbackInvalid(f"{what}: missing MessageStatus")
    status = status.lower()
    if status not in STATUSES:
        raise CallbackInvalid(f"{what}: unknown MessageStatus")
    data: dict[str, Any] = {"status": status, "terminal_failure": status in TERMINAL_FAILURES}
    error_code = _form_value(form, "ErrorCode")
    if error_code:
        data["error_code"] = error_code
    return PartnerEvent(
        event_id=f"{sid}:{status}",
        type="sms.status",
        correlation_key=sid,
        journey_ref=journey_ref or None,
        occurred_at=now(),
        data=data,
    )


def parse_inbound(form: Mapping[str, str], journey_ref: str | None = None) -> PartnerEvent:
    """An inbound text (patient reply). The receiver maps ``data.from`` to the patient."""
    what = "SMS inbound callback"
    sid = _form_value(form, "MessageSid", "SmsSid", "SmsMessageSid")
    if not sid:
        raise CallbackInvalid(f"{what}: missing MessageSid")
    sender = _form_value(form, "From")
    if not sender:
        raise CallbackInvalid(f"{what}: missing From")
    body = form.get("Body")
    if body is None:
        raise CallbackInvalid(f"{what}: missing Body")
    return PartnerEvent(
        event_id=sid,
        type="sms.reply",
        correlation_key=sid,
        journey_ref=journey_ref or None,
        occurred_at=parse_time(form.get("DateSent")) or now(),
        data={"from": sender, "to": form.get("To") or "", "body": body},
    )


INBOUND_STATUSES = frozenset({"received", "receiving"})


def is_inbound(form: Mapping[str, str]) -> bool:
    """Twilio posts inbound texts with ``SmsStatus=received`` (and a Body), status
    callbacks with ``MessageStatus`` of an outbound message."""
    status = (_form_value(form, "MessageStatus", "SmsStatus") or "").lower()
    if status in INBOUND_STATUSES:
        return True
    return not status and "Body" in form


def parse_callback(form: Mapping[str, str], journey_ref: str | None = None) -> PartnerEvent:
    """One endpoint for both kinds: an inbound reply or a delivery status."""
    if is_inbound(form):
        return parse_inbound(form, journey_ref)
    return parse_status_callback(form, journey_ref)


class TwilioClient(PartnerClient):
    """One Twilio account: basic auth, JSON answers, the number we send from."""

    partner: ClassVar[str] = PARTNER
    error_codes: ClassVar[Mapping[int, str]] = TWILIO_ERROR_CODES

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        *,
        send_refs: bool = True,
    ) -> None:
        self._http: PartnerHttp = PartnerHttp(
            self.partner,
            base_url,
            http=http,
            timeout=timeout,
            classify=twilio_classifier(self.error_codes),
            auth=(account_sid, auth_token),
            headers={"Accept": "application/json"},
        )
        self.account_sid = account_sid
        self.from_number = from_number
        self.send_refs = send_refs


class SmsClient(TwilioClient):
    @property
    def _messages(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages"

    async def send(self, req: SmsRequest) -> SmsResult:
        """Send one text. Twilio ignores the Idempotency-Key: a retry is a second text."""
        form = {
            "To": req.to,
            "From": self.from_number,
            "Body": req.body,
            "StatusCallback": req.status_callback,
        }
        if self.send_refs:
            form["PitwallJourneyRef"] = req.journey_ref
            form["PitwallPatientRef"] = req.patient_ref
        response = await self._http.post(
            f"{self._messages}.json", idempotency_key=req.idempotency_key, data=form
        )
        return _sms_result(self._http.json(response), response.status_code)

    async def find_sent(self, to: str, body: str, since: datetime) -> list[SmsResult]:
        """Messages sent to ``to`` with exactly this body, created at or after ``since``;
        newest first (see the module docstring for what this cannot see)."""
        floor = since_floor(since)
        # No DateSent filter: a message still queued has no date_sent yet, and a lookup
        # that misses it would let us send it again. Newest first, so a page or two holds
        # everything since a recent `since`.
        params = {"To": to, "PageSize": "100"}
        found = []
        for resource in await list_pages(self._http, f"{self._messages}.json", params, "messages"):
            created = twilio_time(resource.get("date_created"))
            if (
                resource.get("to") == to
                and resource.get("body") == body
                and created is not None
                and created >= floor
            ):
                found.append(_sms_result(resource, 200))
        return found

    async def fetch(self, sid: str) -> SmsResult:
        """One message's current status and ErrorCode (unknown sid: ``sms.not_found``)."""
        response = await self._http.get(f"{self._messages}/{sid}.json")
        return _sms_result(self._http.json(response), response.status_code)
