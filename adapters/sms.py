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
  the inbound MessageSid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters._common import now, parse_time
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp
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


def _classify(response: httpx.Response, body: Any) -> tuple[str | None, str]:
    detail = f"HTTP {response.status_code}"
    code = body.get("code") if isinstance(body, Mapping) else None
    if isinstance(code, int) and not isinstance(code, bool):
        return TWILIO_ERROR_CODES.get(code), f"{detail}; Twilio error {code}"
    return None, detail


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


class SmsClient(PartnerClient):
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
        self._http = PartnerHttp(
            PARTNER,
            base_url,
            http=http,
            timeout=timeout,
            classify=_classify,
            auth=(account_sid, auth_token),
            headers={"Accept": "application/json"},
        )
        self.account_sid = account_sid
        self.from_number = from_number
        self.send_refs = send_refs

    async def send(self, req: SmsRequest) -> SmsResult:
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
            f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            idempotency_key=req.idempotency_key,
            data=form,
        )
        body = self._http.json(response)
        sid = body.get("sid") if isinstance(body, Mapping) else None
        status = body.get("status") if isinstance(body, Mapping) else None
        if not isinstance(sid, str) or not sid or not isinstance(status, str):
            raise PartnerUnavailable(PARTNER, response.status_code, "malformed response: no sid")
        return SmsResult(message_sid=sid, status=status)
