"""Voice call adapter, Twilio-Calls-shaped.

Call: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json``, form-encoded ``To``,
``From``, ``Twiml`` (built with Twilio's own ``VoiceResponse``: one ``<Say>`` of the text,
``language`` ``en-US`` or ``es-US``), ``StatusCallback``, ``StatusCallbackEvent``
(``initiated``, ``ringing``, ``answered``, ``completed``, repeated; without it Twilio
sends ``completed`` only), ``MachineDetection=DetectMessageEnd`` (so a voicemail hears the
message after the beep) and ``PitwallJourneyRef`` / ``PitwallPatientRef`` (pseudonymous;
real Twilio ignores them), basic auth ``AccountSid:AuthToken``. Answer 201 JSON
``{"sid": "CA…", "status": "queued", …}``; errors like Messages (``{"code", …}``), mapped
to stable codes, the message text dropped (it echoes the number). Twilio does not
deduplicate calls: ``find_calls(to, since)`` lists Calls ``To`` the number with
``StartTime>=`` since's (UTC) date, created at or after ``since``; a call still queued has
no start time and is not listed yet.

Status callbacks (form-encoded, ``X-Twilio-Signature`` over the exact callback URL):
``CallSid``, ``CallStatus`` (``initiated`` → ``ringing`` → ``in-progress`` →
``completed``, or an end in ``no-answer`` / ``busy`` / ``failed`` / ``canceled``),
``AnsweredBy`` once machine detection decided (``human``; ``machine_end_beep`` /
``machine_end_silence`` / ``machine_end_other`` / ``machine_start``: a machine; ``fax``;
``unknown``), ``CallDuration`` (seconds) at the end. event_id = ``"{CallSid}:{CallStatus}"``.
``data.outcome``: ``answered`` (completed, a person or undetermined), ``voicemail``
(completed by a machine: the message was left after the beep), ``no_answer`` (no-answer
or busy: not reached, worth another try later), ``failed`` (failed, canceled, a fax), or
None while the call is in progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from twilio.twiml.voice_response import VoiceResponse

from adapters._common import now
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.sms import TwilioClient, list_pages, since_floor, twilio_time
from domain.partners import PartnerEvent, VoiceRequest, VoiceResult

PARTNER = "voice"
CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)
TERMINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
# Twilio <Say> voices per language (Amazon Polly voices Twilio offers).
DEFAULT_VOICES = {"en-US": "Polly.Joanna", "es-US": "Polly.Lupe"}

TWILIO_ERROR_CODES = {
    20003: "voice.auth_failed",
    21201: "voice.invalid_request",  # no To
    21213: "voice.invalid_request",  # no From
    21205: "voice.invalid_request",  # no / bad Url, Twiml or callback URL
    12100: "voice.invalid_request",  # TwiML does not parse
    21210: "voice.invalid_sender",  # From not a verified caller id
    21212: "voice.invalid_sender",
    21211: "voice.invalid_number",
    21214: "voice.invalid_number",
    13223: "voice.invalid_number",
    13224: "voice.invalid_number",
    21215: "voice.region_not_permitted",
    21216: "voice.region_not_permitted",
}


def twilio_language(language: str) -> str:
    """Our language (``en``, ``es``, ``es-MX``…) → the <Say> language: es-US or en-US."""
    return "es-US" if language.strip().lower().startswith("es") else "en-US"


def build_twiml(text: str, language: str, voices: Mapping[str, str] | None = None) -> str:
    """The call's TwiML: one <Say> of ``text`` (escaped by Twilio's builder)."""
    lang = twilio_language(language)
    response = VoiceResponse()
    response.say(text, voice=(voices or DEFAULT_VOICES).get(lang), language=lang)
    return str(response)


def _outcome(status: str, answered_by: str | None) -> str | None:
    if status == "completed":
        if answered_by == "fax":
            return "failed"
        if answered_by and answered_by.startswith("machine"):
            return "voicemail"
        return "answered"
    if status in ("no-answer", "busy"):
        return "no_answer"
    if status in ("failed", "canceled"):
        return "failed"
    return None


def parse_call_status(form: Mapping[str, str], journey_ref: str | None = None) -> PartnerEvent:
    """A call status callback → ``voice.status``."""
    what = "voice status callback"
    sid = form.get("CallSid")
    status = form.get("CallStatus")
    if not isinstance(sid, str) or not sid:
        raise CallbackInvalid(f"{what}: missing CallSid")
    if not isinstance(status, str) or not status:
        raise CallbackInvalid(f"{what}: missing CallStatus")
    status = status.lower()
    if status not in CALL_STATUSES:
        raise CallbackInvalid(f"{what}: unknown CallStatus")
    answered_by = form.get("AnsweredBy") or None
    return PartnerEvent(
        event_id=f"{sid}:{status}",
        type="voice.status",
        correlation_key=sid,
        journey_ref=journey_ref or None,
        occurred_at=twilio_time(form.get("Timestamp")) or now(),
        data={
            "status": status,
            "answered_by": answered_by,
            "outcome": _outcome(status, answered_by),
            "terminal": status in TERMINAL,
        },
    )


def _voice_result(resource: Any, status_code: int) -> VoiceResult:
    sid = resource.get("sid") if isinstance(resource, Mapping) else None
    status = resource.get("status") if isinstance(resource, Mapping) else None
    if not isinstance(sid, str) or not sid or not isinstance(status, str):
        raise PartnerUnavailable(PARTNER, status_code, "malformed response: no sid")
    answered_by = resource.get("answered_by")
    return VoiceResult(
        call_sid=sid,
        status=status,
        answered_by=answered_by if isinstance(answered_by, str) and answered_by else None,
    )


class VoiceClient(TwilioClient):
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
        voices: Mapping[str, str] | None = None,
        machine_detection: str | None = "DetectMessageEnd",
    ) -> None:
        super().__init__(
            base_url, account_sid, auth_token, from_number, http, timeout, send_refs=send_refs
        )
        self.voices = dict(voices or DEFAULT_VOICES)
        self.machine_detection = machine_detection

    @property
    def _calls(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Calls"

    async def call(self, req: VoiceRequest) -> VoiceResult:
        """Place one call. Twilio ignores the Idempotency-Key: a retry is a second call."""
        pairs = [
            ("To", req.to),
            ("From", self.from_number),
            ("Twiml", build_twiml(req.text, req.language, self.voices)),
            ("StatusCallback", req.status_callback),
            ("StatusCallbackMethod", "POST"),
            *(("StatusCallbackEvent", event) for event in STATUS_EVENTS),
        ]
        if self.machine_detection:
            pairs.append(("MachineDetection", self.machine_detection))
        if self.send_refs:
            pairs += [
                ("PitwallJourneyRef", req.journey_ref),
                ("PitwallPatientRef", req.patient_ref),
            ]
        response = await self._http.post(
            f"{self._calls}.json",
            idempotency_key=req.idempotency_key,
            content=urlencode(pairs).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return _voice_result(self._http.json(response), response.status_code)

    async def find_calls(self, to: str, since: datetime) -> list[VoiceResult]:
        """Calls to ``to`` created at or after ``since``, newest first."""
        floor = since_floor(since)
        params = {"To": to, "StartTime>": floor.date().isoformat(), "PageSize": "100"}
        found = []
        for resource in await list_pages(self._http, f"{self._calls}.json", params, "calls"):
            created = twilio_time(resource.get("date_created"))
            if resource.get("to") == to and created is not None and created >= floor:
                found.append(_voice_result(resource, 200))
        return found

    async def fetch(self, sid: str) -> VoiceResult:
        """One call's current status (unknown sid: ``voice.not_found``)."""
        response = await self._http.get(f"{self._calls}/{sid}.json")
        return _voice_result(self._http.json(response), response.status_code)
