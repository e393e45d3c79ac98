"""Email adapter, SendGrid-shaped.

Send: ``POST {base}/v3/mail/send`` with ``Authorization: Bearer <api key>`` and JSON::

    {"personalizations": [{"to": [{"email": to}], "custom_args": {...}}],
     "from": {"email": from_email, "name": from_name}, "subject": ...,
     "content": [{"type": "text/plain", "value": body}],
     "custom_args": {"journey_ref", "patient_ref", "program", "idempotency_key",
                     "pitwall_contact"}}

Answer 202 with an empty body and the ``X-Message-Id`` header (our message id). Errors
4xx ``{"errors": [{"message", "field", "help"}]}``: only the field names reach the detail.

Event webhook (Pitwall HMAC-signed here; SendGrid itself signs with ECDSA): a JSON array of
events, each with ``sg_event_id`` (the event id), ``sg_message_id`` (``<X-Message-Id>.filter…``:
our message id is the part before ``.filter``), ``event``, ``timestamp`` and our custom args
at top level. Email addresses are not copied into the events we emit; the receiver maps
message ids to its ledger.

SendGrid does not deduplicate sends (``Idempotency-Key`` is ignored): after a crash between
send and answer, look first. Every send carries ``custom_args.pitwall_contact`` = our
idempotency key (SendGrid echoes custom args in every event, and keeps them as the
message's ``unique_args``). ``find_sent(reference)`` asks the Email Activity API (a paid
add-on; the API key needs Email Activity access): ``GET /v3/messages?limit=10&query=…``
with the query ``(unique_args['pitwall_contact']="<reference>")`` (URL-encoded; the
query-language form documented for ``unique_args``, as we read the reference), answered
``{"messages": [{"msg_id", "from_email", "subject", "to_email", "status",
"last_event_time", …}]}``; each ``msg_id`` (``<X-Message-Id>.filter…``) gives back our
message id. Activity is not instant at SendGrid: an empty answer right after a send is not
proof that nothing went out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from adapters._common import load_json, now, parse_time
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp
from domain.partners import EmailRequest, EmailResult, PartnerEvent

PARTNER = "email"
# The custom arg (unique arg) that carries our reference: the send's idempotency key.
CONTACT_ARG = "pitwall_contact"
EVENTS = frozenset(
    {
        "processed",
        "deferred",
        "delivered",
        "bounce",
        "blocked",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    }
)
TERMINAL_FAILURES = frozenset({"bounce", "blocked", "dropped"})
# Address-level opt-outs (group_unsubscribe only leaves one ASM group: data.asm_group_id).
OPT_OUTS = frozenset({"spamreport", "unsubscribe"})
# Suppress the address for future email: hard bounce and opt-outs. blocked is temporary;
# dropped means SendGrid already suppresses it (or the message itself was bad).
SUPPRESS = frozenset({"bounce"}) | OPT_OUTS


def _classify(response: httpx.Response, body: Any) -> tuple[str | None, str]:
    detail = f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, Mapping) else None
    fields: list[str] = []
    if isinstance(errors, list):
        fields = [str(e["field"]) for e in errors if isinstance(e, Mapping) and e.get("field")]
    if fields:
        detail += "; fields: " + ", ".join(fields)
    code = None
    if response.status_code == 400 and any(
        f.endswith(("email", ".to")) or ".to." in f for f in fields
    ):
        code = "email.invalid_address"
    return code, detail


def message_id_of(sg_message_id: str) -> str:
    """``sg_message_id`` is ``<X-Message-Id>.filter…``; the X-Message-Id may contain dots."""
    head, sep, _ = sg_message_id.partition(".filter")
    return head if sep else sg_message_id


def parse_events(body: bytes | str | list[Any]) -> list[PartnerEvent]:
    what = "email event batch"
    data = load_json(body, what)
    if not isinstance(data, list):
        raise CallbackInvalid(f"{what}: body is not a JSON array")
    events: list[PartnerEvent] = []
    for index, item in enumerate(data):
        where = f"{what}[{index}]"
        if not isinstance(item, Mapping):
            raise CallbackInvalid(f"{where}: not an object")
        event_id = item.get("sg_event_id")
        if not isinstance(event_id, str) or not event_id:
            raise CallbackInvalid(f"{where}: missing sg_event_id")
        kind = item.get("event")
        if not isinstance(kind, str) or kind not in EVENTS:
            raise CallbackInvalid(f"{where}: missing or unknown event")
        sg_message_id = item.get("sg_message_id")
        if not isinstance(sg_message_id, str) or not sg_message_id:
            raise CallbackInvalid(f"{where}: missing sg_message_id")
        # Bounce and blocked both arrive as event=bounce, told apart by `type`.
        if kind == "bounce" and item.get("type") == "blocked":
            kind = "blocked"
        journey_ref = item.get("journey_ref")
        idem = item.get("idempotency_key")
        out: dict[str, Any] = {
            "event": kind,
            "message_id": message_id_of(sg_message_id),
            "terminal": "delivered"
            if kind == "delivered"
            else ("failed" if kind in TERMINAL_FAILURES else None),
            "opt_out": kind in OPT_OUTS,
            "suppress": kind in SUPPRESS,
        }
        if item.get("asm_group_id") is not None:
            out["asm_group_id"] = item["asm_group_id"]
        if isinstance(idem, str) and idem:
            out["idempotency_key"] = idem
        events.append(
            PartnerEvent(
                event_id=event_id,
                type="email.event",
                correlation_key=message_id_of(sg_message_id),
                journey_ref=journey_ref if isinstance(journey_ref, str) and journey_ref else None,
                occurred_at=parse_time(item.get("timestamp")) or now(),
                data=out,
            )
        )
    return events


class EmailClient(PartnerClient):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http: PartnerHttp = PartnerHttp(
            PARTNER,
            base_url,
            http=http,
            timeout=timeout,
            classify=_classify,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        self.from_email = from_email
        self.from_name = from_name

    async def send(self, req: EmailRequest) -> EmailResult:
        custom_args = {
            "journey_ref": req.journey_ref,
            "patient_ref": req.patient_ref,
            "program": req.program,
            "idempotency_key": req.idempotency_key,
            CONTACT_ARG: req.idempotency_key,
        }
        sender: dict[str, str] = {"email": self.from_email}
        if self.from_name:
            sender["name"] = self.from_name
        payload = {
            "personalizations": [{"to": [{"email": req.to}], "custom_args": custom_args}],
            "from": sender,
            "subject": req.subject,
            "content": [{"type": "text/plain", "value": req.body}],
            "custom_args": custom_args,
        }
        response = await self._http.post(
            "/v3/mail/send", idempotency_key=req.idempotency_key, json=payload
        )
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            raise PartnerUnavailable(
                PARTNER, response.status_code, "malformed response: no X-Message-Id"
            )
        return EmailResult(message_id=message_id)

    async def find_sent(self, reference: str) -> list[str]:
        """Message ids (X-Message-Id) of the sends whose ``pitwall_contact`` is
        ``reference``, newest first; empty when SendGrid shows none."""
        if not reference or '"' in reference or "\\" in reference:
            raise ValueError("reference must be non-empty, without quotes or backslashes")
        query = f"(unique_args['{CONTACT_ARG}']=\"{reference}\")"
        response = await self._http.get("/v3/messages", params={"query": query, "limit": "10"})
        body = self._http.json(response)
        messages = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(messages, list):
            raise PartnerUnavailable(PARTNER, response.status_code, "malformed list: no messages")
        ids: list[str] = []
        for item in messages:
            msg_id = item.get("msg_id") if isinstance(item, Mapping) else None
            if isinstance(msg_id, str) and msg_id and message_id_of(msg_id) not in ids:
                ids.append(message_id_of(msg_id))
        return ids
