"""The simulator's partners (simulate/sandbox_partners.py) against the real sandbox: the
same sampled patient, the same calls, through the production adapters on one side (HTTP,
callbacks to a sink, parsed as the receiver parses them) and the script on the other;
what the journey would be told must match, up to ids and the clock (a sandbox day lasts
SPD real seconds)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from adapters import consent, payer, pharmacy
from adapters.consent import ConsentClient
from adapters.copay import CopayClient
from adapters.payer import PayerClient
from adapters.pharmacy import PharmacyClient
from domain.actions import PartnerCall
from domain.journey import JourneyState
from domain.partner_actions import ACTIONS, build_request
from domain.partners import PartnerEvent
from simulate.cohort_scenario import PatientScenario, load_scenario, sample_patient
from simulate.runtime import VirtualRuntime
from simulate.sandbox_partners import SandboxPartners
from simulate.script import START, World
from tests.sandbox import harness

sink = harness.sink  # the sandbox and its callback sink, on loopback (session fixtures)
sandbox_url = harness.sandbox_url

SPD = 0.04  # real seconds per sandbox day
CLIENTS = {"payer": PayerClient, "pharmacy": PharmacyClient, "consent": ConsentClient,
           "copay": CopayClient}  # fmt: skip
PARSERS = {"payer": payer.parse_notification,
           "pharmacy": lambda body: [pharmacy.parse_callback(body)],
           "consent": lambda body: [consent.parse_callback(body)]}  # fmt: skip
# Ids and the clock's own values differ by construction; each is checked by shape.
VOLATILE = {"rx_id", "authorization_number", "tracking_number", "dispense_id", "dispensed_at",
            "earliest_fill_date", "pa_number", "request_id", "expires_on"}  # fmt: skip


def patient_like(**changes: Any) -> PatientScenario:
    base = sample_patient(load_scenario("typical"), "fidelity", 0, 12)
    return replace(base, outage=False, **changes)


class Pair:
    """One patient on both sides: the sandbox (as `patient_ref`) and the script."""

    def __init__(self, patient: PatientScenario, patient_ref: str) -> None:
        self.patient, self.ref = patient, patient_ref
        world = World(patient, patient_ref, "demo", START, START + timedelta(days=365), None)  # type: ignore[arg-type]
        self.hub = SandboxPartners(world)
        state = JourneyState(
            journey_id=f"journey-{patient_ref}", template_id="t", template_version=1
        )
        self.rt = VirtualRuntime(state, now=START)

    def call(self, action: str, **fields: Any) -> PartnerCall:
        return PartnerCall(
            action=action, journey_ref=f"journey-{self.ref}", patient_ref=self.ref,
            program="demo", step_id="s", idempotency_key=f"wf/{uuid.uuid4().hex}", fields=fields,
        )  # fmt: skip

    async def sandbox(self, http: httpx.AsyncClient, call: PartnerCall) -> dict[str, Any]:
        spec = ACTIONS[call.action]
        client = CLIENTS[spec.partner](self.base, http=http)
        result = await getattr(client, spec.method)(build_request(call))
        return dict(result.model_dump(mode="json"))

    def script(self, call: PartnerCall) -> dict[str, Any]:
        hub = self.hub
        answer = {"consent.request": hub.consent, "payer.submit_prior_auth": hub.prior_auth,
                  "payer.submit_appeal": hub.prior_auth, "pharmacy.refer": hub.refer,
                  "copay.enroll": hub.copay}[call.action]  # fmt: skip
        return dict(
            ACTIONS[call.action]
            .result.model_validate(answer(call, self.rt))
            .model_dump(mode="json")
        )

    def scripted(self, key: str) -> list[PartnerEvent]:
        """The script's events for `key`, in delivery order."""
        items = sorted(self.rt._scheduled, key=lambda e: (e[0], e[1]))
        return [e for _, _, e in items if isinstance(e, PartnerEvent) and e.correlation_key == key]

    base = ""


async def received(sink: harness.Sink, partner: str, key: str, count: int) -> list[PartnerEvent]:
    hits = await sink.wait_for(
        lambda r: r.path == f"/v1/webhooks/{partner}" and key.encode() in r.body, count
    )
    return [event for hit in hits for event in PARSERS[partner](hit.body)]


def told(events: list[PartnerEvent]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, {k: v for k, v in e.data.items() if k not in VOLATILE}) for e in events]


def offsets(events: list[PartnerEvent], unit: float) -> list[float]:
    return [
        round((e.occurred_at - events[0].occurred_at).total_seconds() / unit, 1) for e in events
    ]


async def start(pair: Pair, url: str) -> None:
    pair.base = url
    await harness.put_scenario(url, pair.ref, **pair.patient.sandbox_scenario(SPD))


async def test_pharmacy_claims_fill_ship_deliver_as_the_sandbox_sends_them(
    sandbox_url: str, sink: harness.Sink
) -> None:
    pair = Pair(patient_like(claim_rejects=("79",), fill_days=4.0, ship_days=1.0,
                             deliver_days=2.0), f"pt-{uuid.uuid4().hex[:10]}")  # fmt: skip
    await start(pair, sandbox_url)
    async with httpx.AsyncClient() as http:
        for n, count in ((0, 1), (1, 4)):  # the first claim rejected 79, the second paid
            call = pair.call("pharmacy.refer", drug_code="99999-0001-01", days_supply=28)
            real, sim = await pair.sandbox(http, call), pair.script(call)
            assert real.keys() == sim.keys() and real["rx_id"][:3] == sim["rx_id"][:3] == "rx_"
            got = await received(sink, "pharmacy", real["rx_id"], count)
            ours = pair.scripted(sim["rx_id"])
            assert told(got) == told(ours), n
            assert offsets(got, SPD) == offsets(ours, 86400)
            assert [e.correlation_key for e in got] == [real["rx_id"]] * count
            if n == 0:  # a 79 says when the claim will pay: the fill's UTC day + 5
                real_fill = datetime.now(UTC).date()  # the sandbox filled within the second
                assert got[0].data["earliest_fill_date"] == str(real_fill + timedelta(days=5))
                sim_fill = START.date() + timedelta(days=4)
                assert ours[0].data["earliest_fill_date"] == str(sim_fill + timedelta(days=5))


async def test_a_pa_asked_for_more_then_decided_as_the_sandbox_words_it(
    sandbox_url: str, sink: harness.Sink
) -> None:
    pair = Pair(patient_like(pa_required=True, pa="pend_info_approve", pa_turnaround_days=2.0),
                f"pt-{uuid.uuid4().hex[:10]}")  # fmt: skip
    await start(pair, sandbox_url)
    async with httpx.AsyncClient() as http:
        call = pair.call("payer.submit_prior_auth", drug_code="99999-0001-01")
        real, sim = await pair.sandbox(http, call), pair.script(call)
        masked = lambda r: {k: v for k, v in r.items() if k != "pa_number"}  # noqa: E731
        assert masked(real) == masked(sim) == {
            "outcome": "pended", "review_action_code": "A4", "expires_on": None}  # fmt: skip
        assert len(real["pa_number"]) == len(sim["pa_number"]) == 12
        [asked] = await received(sink, "payer", real["pa_number"], 1)
        [ours] = pair.scripted(sim["pa_number"])
        assert told([asked]) == told([ours])
        # The office answers: a Claim Update of the same PA, decided 2 days later.
        pair.rt.clock = ours.occurred_at + timedelta(days=3)
        update = pair.call("payer.submit_prior_auth", drug_code="99999-0001-01",
                           update_of=real["pa_number"])  # fmt: skip
        sim_update = pair.call("payer.submit_prior_auth", drug_code="99999-0001-01",
                               update_of=sim["pa_number"])  # fmt: skip
        assert masked(await pair.sandbox(http, update)) == masked(pair.script(sim_update))
        got = await received(sink, "payer", real["pa_number"], 2)
        decided = pair.scripted(sim["pa_number"])[-1]
        assert told(got[-1:]) == told([decided])
        assert decided.data["outcome"] == "approved"
        # Valid 180 days from the day the sandbox built the decision (the update's).
        for event, built in ((got[-1], datetime.now(UTC).date()), (decided, pair.rt.clock.date())):
            assert (date.fromisoformat(event.data["expires_on"]) - built).days == 180


async def test_consent_benefits_and_copay_answer_as_the_sandbox_does(
    sandbox_url: str, sink: harness.Sink
) -> None:
    for plan_type in ("commercial", "medicare"):
        pair = Pair(patient_like(plan_type=plan_type, consent="sign", consent_days=1.0),
                    f"pt-{uuid.uuid4().hex[:10]}")  # fmt: skip
        await start(pair, sandbox_url)
        async with httpx.AsyncClient() as http:
            benefits = pair.call("payer.verify_benefits", drug_code="99999-0001-01")
            assert await pair.sandbox(http, benefits) == pair.hub.benefits()
            call = pair.call("consent.request")
            real, sim = await pair.sandbox(http, call), pair.script(call)
            [signed] = await received(sink, "consent", real["request_id"], 1)
            [ours] = pair.scripted(sim["request_id"])
            assert told([signed]) == told([ours])
            assert (signed.type, ours.data["request_id"]) == ("consent.signed", sim["request_id"])
            enroll = pair.call("copay.enroll", copay_program="ZRX-COPAY", plan_type=plan_type)
            real, sim = await pair.sandbox(http, enroll), pair.script(enroll)
            for answer in (real, sim):
                answer.pop("enrollment_id")
                if answer.get("card"):
                    answer["card"].pop("member_id")
            assert real == sim
            assert real["outcome"] == ("approved" if plan_type == "commercial" else "rejected")
