"""Partner callbacks: verify the signature, parse, deliver to the journey as an event.

With PITWALL_RECEIVER_REQUIRE_WEBHOOK_KEYS (the default) a callback must also carry an
API key with its partner's scope (`webhooks:payer`, `webhooks:pharmacy`,
`webhooks:consent`, `webhooks:email`, `webhooks:sms`; `admin` too): Bearer or X-API-Key
for the JSON partners; for SMS also the basic-auth password, because Twilio can only
send credentials embedded in the callback URL (`https://twilio:<key>@host/...`). Twilio
first calls without credentials and answers a 401 + `WWW-Authenticate: Basic` with them,
so the SMS route challenges Basic. The key is checked first (401 `unauthenticated`,
403 `forbidden`), then the signature, which stays the authentication of record: Twilio
signs the URL without the credentials, which is the URL rebuilt here from the public URL.
The CRM route (`webhooks:crm`, only while the CRM queue is on) checks HubSpot's
`X-HubSpot-Signature-v3` over that URL too; its completions go to services/crm.py.

Bad signature → 401 and nothing forwarded. Malformed → 400. Then the events go to the
callback service (services/callbacks.py), which routes each one; 202 with the outcomes.
An inbound text is answered 200 with TwiML: Twilio sends its <Message> (the HELP answer,
the one confirmation of a STOP or START) to the sender; the outcome is in the
`Pitwall-Outcome` header. Call status callbacks arrive on /voice.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from fastapi import APIRouter, Request, Response
from temporalio.service import RPCError
from twilio.twiml.messaging_response import MessagingResponse

from adapters import consent, crm, email, payer, pharmacy, sms, voice
from adapters.errors import CallbackInvalid
from adapters.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    verify_body,
    verify_twilio,
)
from api.auth import authenticate, forbidden, presented_key, unauthenticated
from api.errors import ApiProblem
from api.problems import problem
from domain.partners import PartnerEvent
from services.callbacks import REPLY, CallbackService, JourneysUnavailable
from services.crm import CrmCompletions, CrmUnavailable
from store.api_keys import ApiKey, ApiKeyRepository

log = structlog.get_logger("webhooks")


class Webhooks:
    def __init__(
        self,
        callbacks: CallbackService,
        secret: str,
        twilio_token: str,
        public_url: str,
        keys: ApiKeyRepository | None = None,
        crm: CrmCompletions | None = None,
        crm_secret: str = "",
    ) -> None:
        self.callbacks = callbacks
        self.crm = crm  # None: no CRM queue, no CRM route
        self.crm_secret = crm_secret
        self.keys = keys  # None: webhooks need no API key (signature only)
        self.secret = secret
        self.twilio_token = twilio_token
        self.public_url = public_url.rstrip("/")

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
        r.add_api_route("/payer", self._json(payer.parse_notification, "payer"), methods=["POST"])
        r.add_api_route("/pharmacy", self._json(_one(pharmacy.parse_callback), "pharmacy"),
                        methods=["POST"])  # fmt: skip
        r.add_api_route("/consent", self._json(_one(consent.parse_callback), "consent"),
                        methods=["POST"])  # fmt: skip
        r.add_api_route("/email", self._json(email.parse_events, "email"), methods=["POST"])
        r.add_api_route("/sms", self.sms, methods=["POST"])
        r.add_api_route("/voice", self.voice, methods=["POST"])
        if self.crm is not None:
            r.add_api_route("/crm", self.crm_webhook, methods=["POST"])
        return r

    def _json(
        self, parse: Callable[[bytes], list[PartnerEvent]], partner: str
    ) -> Callable[[Request], object]:
        async def receive(request: Request) -> Response:
            if (denied := await self._authorize(request, partner)) is not None:
                return denied
            body = await request.body()
            if not verify_body(
                self.secret,
                request.headers.get(TIMESTAMP_HEADER, ""),
                body,
                request.headers.get(SIGNATURE_HEADER, ""),
            ):
                log.warning("webhook.bad_signature", partner=partner)
                return problem(401, "bad-signature", "Signature verification failed")
            try:
                events = parse(body)
            except CallbackInvalid as err:
                return problem(400, "invalid-callback", "Callback could not be parsed", str(err))
            return await self.deliver(partner, events)

        receive.__name__ = f"{partner}_webhook"
        return receive

    async def _authorize(self, request: Request, partner: str) -> Response | None:
        """None if the request may go on; else the 401 / 403 problem to answer."""
        if self.keys is None:
            return None
        scope = f"webhooks:{partner}"
        try:
            key = await authenticate_webhook(self.keys, request, partner)
            if not key.allows(scope):
                log.warning("webhook.forbidden", partner=partner, key_id=key.key_id)
                raise forbidden(scope)
        except ApiProblem as refused:
            return refused.response()
        return None

    async def _twilio_form(self, request: Request) -> dict[str, str] | Response:
        """The verified form of a Twilio callback, or the problem to answer. Twilio's
        texts and calls come from one account: both need the `webhooks:sms` scope."""
        if (denied := await self._authorize(request, "sms")) is not None:
            return denied
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = (
            self.public_url
            + request.url.path
            + (f"?{request.url.query}" if request.url.query else "")
        )
        if not verify_twilio(
            self.twilio_token, url, form, request.headers.get(TWILIO_SIGNATURE_HEADER, "")
        ):
            log.warning("webhook.bad_signature", partner="twilio")
            return problem(401, "bad-signature", "Signature verification failed")
        return form

    async def sms(self, request: Request) -> Response:
        form = await self._twilio_form(request)
        if isinstance(form, Response):
            return form
        try:
            event = sms.parse_callback(form, request.query_params.get("journey"))
        except CallbackInvalid as err:
            return problem(400, "invalid-callback", "Callback could not be parsed", str(err))
        if event.type != REPLY:
            return await self.deliver("sms", [event])
        try:
            reply = await self.callbacks.reply("sms", event)
        except RPCError:
            return _temporal_unavailable()
        log.info("callback.reply", event_id=event.event_id, outcome=reply.outcome)
        # Twilio sends what the webhook answers: the confirmation or help text, if any.
        answer = MessagingResponse()
        if reply.answer:
            answer.message(reply.answer)
        return Response(
            str(answer), status_code=200, media_type="application/xml",
            headers={"Pitwall-Outcome": reply.outcome},
        )  # fmt: skip

    async def voice(self, request: Request) -> Response:
        form = await self._twilio_form(request)
        if isinstance(form, Response):
            return form
        try:
            event = voice.parse_call_status(form, request.query_params.get("journey"))
        except CallbackInvalid as err:
            return problem(400, "invalid-callback", "Callback could not be parsed", str(err))
        return await self.deliver("voice", [event])

    async def crm_webhook(self, request: Request) -> Response:
        """HubSpot-shaped: a signed JSON array of events; completions complete our tasks."""
        assert self.crm is not None
        if (denied := await self._authorize(request, "crm")) is not None:
            return denied
        body = await request.body()
        uri = self.public_url + request.url.path + (
            f"?{request.url.query}" if request.url.query else ""
        )  # fmt: skip
        if not crm.verify(
            self.crm_secret, request.method, uri, body,
            request.headers.get(crm.TIMESTAMP_HEADER), request.headers.get(crm.SIGNATURE_HEADER),
        ):  # fmt: skip
            log.warning("webhook.bad_signature", partner="crm")
            return problem(401, "bad-signature", "Signature verification failed")
        try:
            events = crm.parse_webhook(body)
        except CallbackInvalid as err:
            return problem(400, "invalid-callback", "Callback could not be parsed", str(err))
        try:
            outcomes = await self.crm.receive(events)
        except JourneysUnavailable:
            return _temporal_unavailable()
        except CrmUnavailable:
            return problem(
                503, "partner-unavailable", "The CRM did not answer; retry later",
                headers={"Retry-After": "5"},
            )  # fmt: skip
        return Response(
            json.dumps({"received": len(events), "outcomes": outcomes}),
            status_code=202,
            media_type="application/json",
        )

    async def deliver(self, partner: str, events: list[PartnerEvent]) -> Response:
        try:
            outcomes = await self.callbacks.deliver(partner, events)
        except JourneysUnavailable:
            return _temporal_unavailable()
        return Response(
            json.dumps({"received": len(events), "outcomes": outcomes}),
            status_code=202,
            media_type="application/json",
        )


async def authenticate_webhook(keys: ApiKeyRepository, request: Request, partner: str) -> ApiKey:
    challenge = "Basic" if partner == "sms" else "Bearer"
    try:
        return await authenticate(
            keys, presented_key(request, allow_basic=True), f"/v1/webhooks/{partner}"
        )
    except ApiProblem:
        raise unauthenticated(challenge) from None


def _one(parse: Callable[[bytes], PartnerEvent]) -> Callable[[bytes], list[PartnerEvent]]:
    return lambda body: [parse(body)]


def _temporal_unavailable() -> Response:
    return problem(
        503, "temporal-unavailable", "Journeys are unavailable; retry later",
        headers={"Retry-After": "5"},
    )  # fmt: skip
