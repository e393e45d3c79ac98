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

Bad signature → 401 and nothing forwarded. Malformed → 400. A callback whose journey
cannot take it (unknown, finished, or no journey reference) is kept for operator review
and answered 202: never dropped. Duplicates are harmless: journeys dedupe on event id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog
from fastapi import APIRouter, Request, Response
from temporalio.service import RPCError

from adapters import consent, email, payer, pharmacy, sms
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
from client.journeys import JourneyClient, JourneyClosed, JourneyNotFound
from domain.journey import patient_of
from domain.partners import PartnerEvent
from store import Store
from store.api_keys import ApiKey, ApiKeyRepository
from store.ledger import ContactStatus
from store.timeline import TimelineEvent

log = structlog.get_logger("webhooks")

# Gateway delivery statuses that settle a contact-ledger row (others are in-flight).
RECEIPT_STATUS: dict[str, ContactStatus] = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}


class Webhooks:
    journeys: JourneyClient  # set when the app connects to Temporal

    def __init__(
        self,
        store: Store,
        secret: str,
        twilio_token: str,
        public_url: str,
        keys: ApiKeyRepository | None = None,
    ) -> None:
        self.store = store
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

    async def sms(self, request: Request) -> Response:
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
            log.warning("webhook.bad_signature", partner="sms")
            return problem(401, "bad-signature", "Signature verification failed")
        journey = request.query_params.get("journey")
        try:
            event = sms.parse_callback(form, journey)
        except CallbackInvalid as err:
            return problem(400, "invalid-callback", "Callback could not be parsed", str(err))
        return await self.deliver("sms", [event])

    async def deliver(self, partner: str, events: list[PartnerEvent]) -> Response:
        outcomes = []
        for event in events:
            try:
                outcome = await self._deliver_one(partner, event)
            except RPCError:
                # Temporal is down or restarting: the partner retries later; nothing is lost.
                log.warning("webhook.temporal_unavailable", partner=partner)
                return problem(
                    503, "temporal-unavailable", "Journeys are unavailable; retry later",
                    headers={"Retry-After": "5"},
                )  # fmt: skip
            outcomes.append(outcome)
            log.info(
                "webhook.event", partner=partner, type=event.type, event_id=event.event_id,
                journey=event.journey_ref, outcome=outcome,
            )  # fmt: skip
        return Response(
            json.dumps({"received": len(events), "outcomes": outcomes}),
            status_code=202,
            media_type="application/json",
        )

    async def _deliver_one(self, partner: str, event: PartnerEvent) -> str:
        # Signal first, record after: a partner retry after a failure here re-signals, and
        # the journey (by event id) and the store (by key) both drop the repeat.
        outcome = "delivered"
        if not event.journey_ref:
            # The partner did not echo our reference: find the journey by theirs.
            journey = await asyncio.to_thread(self._journey_by_reference, event)
            if journey is not None:
                event = event.model_copy(update={"journey_ref": journey})
        if not event.journey_ref:
            outcome = "kept_for_review"
            await self._keep(partner, event, "no_journey_reference")
        else:
            try:
                await self.journeys.signal_event(event.journey_ref, event)
            except JourneyNotFound:
                outcome = "kept_for_review"
                await self._keep(partner, event, "journey_not_found")
            except JourneyClosed:
                # Late delivery receipts for a finished journey still update the ledger.
                outcome = "recorded" if event.type == "sms.status" else "kept_for_review"
                if outcome == "kept_for_review":
                    await self._keep(partner, event, "journey_finished")
        await asyncio.to_thread(self._record, partner, event)
        return outcome

    def _journey_by_reference(self, event: PartnerEvent) -> str | None:
        if event.type.startswith("sms."):
            entry = self.store.ledger.by_provider_message_id(event.correlation_key)
            return entry.journey_ref if entry else None
        return self.store.correlations.journey_for(event.correlation_key)

    async def _keep(self, partner: str, event: PartnerEvent, reason: str) -> None:
        await asyncio.to_thread(self.store.callbacks.keep, partner, event, reason)

    def _record(self, partner: str, event: PartnerEvent) -> None:
        """The patient's timeline, and for delivery receipts the contact ledger."""
        if event.type == "sms.status":
            self._receipt(event)
        patient = patient_of(event.journey_ref)
        if patient is None:
            return
        detail = event.data.get("status") or event.data.get("outcome") or event.data.get("event")
        self.store.timeline.record(
            TimelineEvent(
                idempotency_key=f"{partner}:{event.event_id}",
                patient_ref=patient,
                journey_ref=event.journey_ref,
                type="partner.callback",  # when we heard of it: keeps the story in order
                summary=f"{event.type}" + (f": {detail}" if detail else ""),
                correlation={"key": event.correlation_key, "event_id": event.event_id},
            )
        )

    def _receipt(self, event: PartnerEvent) -> None:
        entry = self.store.ledger.by_provider_message_id(event.correlation_key)
        status = str(event.data.get("status", ""))
        if entry is None or status not in RECEIPT_STATUS:
            return
        self.store.ledger.transition(
            entry.idempotency_key, RECEIPT_STATUS[status], reason=event.data.get("error_code")
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
