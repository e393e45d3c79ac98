"""The messaging activity against gateways that do not deduplicate (fakes of one layer,
a real store): a 5xx means the gateway did not take the message, so the retry sends it;
a timeout may have landed, so the retry asks the gateway before sending anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.messaging import MessagingActivities
from adapters.errors import PartnerUnavailable
from domain.actions import ContactRequest
from domain.partners import EmailRequest, EmailResult, SmsRequest, SmsResult
from store import Store
from store.patients import PatientDetails

PROGRAM = "retry-program"
PHONE = "+13125550177"
MORNING = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 09:00 in Chicago


class Gateway:
    """Twilio-like: every POST that gets through is a new text; failures are scripted."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.texts: list[SmsRequest] = []

    async def send(self, req: SmsRequest) -> SmsResult:
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, TimeoutError):  # the text went, the answer was lost
                self.texts.append(req)
                raise PartnerUnavailable("sms", None, "timeout: ReadTimeout")
            raise failure
        self.texts.append(req)
        return SmsResult(message_sid=f"SM{len(self.texts)}", status="queued")

    async def find_sent(self, to: str, body: str, since: datetime) -> list[SmsResult]:
        return [SmsResult(message_sid=f"SM{i + 1}", status="sent")
                for i, t in enumerate(self.texts) if t.to == to and t.body == body]  # fmt: skip


def messaging(store: Store, gateway: Gateway) -> MessagingActivities:
    return MessagingActivities(
        gateway,  # type: ignore[arg-type]
        email=None,  # type: ignore[arg-type]
        store=store,
        callback_base="http://receiver.invalid",
        in_flight=timedelta(0),  # no earlier try is still talking to the gateway here
    )


def request(ref: str) -> ContactRequest:
    return ContactRequest(
        journey_ref=f"journey/{PROGRAM}/{ref}", patient_ref=ref, program=PROGRAM,
        step_id="welcome", idempotency_key=f"journey/{PROGRAM}/{ref}/welcome/1",
        content="welcome@1", purpose="treatment", message_class="operational",
        channels=["sms"], values={"program_name": "Pitwall", "help_contact": "1-800-555-0100",
                                  "drug_name": "Zorvexa"},
        reason="welcome", at=MORNING,
    )  # fmt: skip


def patient(store: Store, ref: str) -> str:
    store.patients.upsert(ref, PatientDetails(phone=PHONE))
    store.directory.grant_consent(ref, "sms", "treatment", PROGRAM)
    return ref


async def attempts(activity: MessagingActivities, req: ContactRequest, n: int) -> Any:
    """Run the activity as Temporal retries it: until it answers or n tries."""
    for _ in range(n - 1):
        try:
            return await activity.contact(req)
        except Exception:
            continue
    return await activity.contact(req)


async def test_a_gateway_5xx_is_retried_and_the_patient_gets_one_text(store: Store) -> None:
    ref = patient(store, "pt-retry5xx")
    gateway = Gateway(PartnerUnavailable("sms", 503, "HTTP 503"))
    outcome = await attempts(messaging(store, gateway), request(ref), 2)
    assert (outcome.status, outcome.message_id) == ("sent", "SM1")
    assert len(gateway.texts) == 1
    history = [(e.status, e.reason) for e in store.ledger.events(request(ref).idempotency_key)]
    assert history == [("sending", None), ("planned", "gateway_503"), ("sending", None),
                       ("sent", None)]  # fmt: skip


async def test_a_lost_answer_is_reconciled_and_never_sent_again(store: Store) -> None:
    ref = patient(store, "pt-retrytimeout")
    gateway = Gateway(TimeoutError())
    outcome = await attempts(messaging(store, gateway), request(ref), 2)
    assert (outcome.status, outcome.message_id) == ("sent", "SM1")
    assert len(gateway.texts) == 1  # the retry asked; it did not send
    story = [e.summary for e in store.timeline.for_patient(ref) if e.type == "message.sent"]
    assert story == ["sms treatment reconciled"]


@pytest.mark.parametrize("failures", [1, 3])
async def test_however_often_it_is_retried_one_text_goes(store: Store, failures: int) -> None:
    ref = patient(store, f"pt-retry{failures}")
    gateway = Gateway(*[PartnerUnavailable("sms", 502, "HTTP 502")] * failures)
    outcome = await attempts(messaging(store, gateway), request(ref), failures + 3)
    assert outcome.status == "sent" and len(gateway.texts) == 1
    again = await messaging(store, gateway).contact(request(ref))  # a replayed activity
    assert (again.status, again.message_id) == ("sent", outcome.message_id)
    assert len(gateway.texts) == 1


class Mailer:
    """SendGrid-like: a 503, then accepted; its activity feed lags (finds nothing)."""

    def __init__(self) -> None:
        self.failures = [PartnerUnavailable("email", 503, "HTTP 503")]
        self.sent: list[EmailRequest] = []

    async def send(self, req: EmailRequest) -> EmailResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(req)
        return EmailResult(message_id=f"msg-{len(self.sent)}")

    async def find_sent(self, reference: str) -> list[str]:
        return []


async def test_an_email_refused_with_a_5xx_is_sent_on_retry_not_left_unknown(
    store: Store,
) -> None:
    """The activity feed cannot prove an email did not go, so only a definite refusal
    (an HTTP 5xx answer) lets the retry send it: the patient gets it, no task is opened."""
    ref = patient(store, "pt-mail5xx")
    store.patients.upsert(ref, PatientDetails(email="pt@example.com"))
    store.directory.grant_consent(ref, "email", "treatment", PROGRAM)
    mailer = Mailer()
    activity = MessagingActivities(
        Gateway(), email=mailer, store=store,  # type: ignore[arg-type]
        callback_base="http://receiver.invalid", in_flight=timedelta(0),
    )  # fmt: skip
    outcome = await attempts(activity, request(ref).model_copy(update={"channels": ["email"]}), 2)
    assert (outcome.status, outcome.channel, len(mailer.sent)) == ("sent", "email", 1)
    assert store.tasks.for_patient(ref) == []
