"""The local demo (what `make run` starts) shows every major state of the hub journey:
each demo patient is found by its stage in Temporal visibility, as an operator filters
the Temporal UI (`PitwallStage = ...`), and the unworked tasks mark needs-attention."""

from __future__ import annotations

import asyncio
import time

import httpx

from client.http import PitwallHttpClient
from devtools import demo
from tests.e2e.conftest import Stack

DEMO_TIME_SCALE = 21600.0  # the stack's default: a journey-day every 4 s


async def test_the_demo_shows_every_major_state_filterable_by_stage(stack: Stack) -> None:
    async with PitwallHttpClient(stack.receiver_url, api_key=stack.admin_key) as client:
        started = await demo.start_journeys(
            client, stack.sandbox_url, "specialty_start", DEMO_TIME_SCALE
        )
    wanted = {j.ack.journey_id: j.patient.shows for j in started}
    hub = {j.ack.template_version for j in started if j.ack.template_id == "specialty_start"}
    assert hub == {2}
    required = {
        "INTAKE_INCOMPLETE", "PA_PENDED", "ADDITIONAL_INFO_REQUESTED", "APPEAL_SUBMITTED",
        "BRIDGE_SHIPPED", "FREE_DRUG_EVAL", "AFFORDABILITY_CHECK", "SP_INTAKE", "ONBOARDING",
        "ON_HOLD", "ON_THERAPY", "AT_RISK", "DISCONTINUED",
    }  # fmt: skip
    assert required <= set(wanted.values())

    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:

        async def in_stage(stage: str) -> set[str]:
            page = await api.get("/v1/journeys", params={"stage": stage, "page_size": 100})
            assert page.status_code == 200, page.text
            return {j["journey_id"] for j in page.json()["items"]}

        deadline = time.monotonic() + 90
        missing = dict(wanted)
        while missing and time.monotonic() < deadline:
            for stage in set(missing.values()):
                found = await in_stage(stage)
                missing = {j: s for j, s in missing.items() if not (s == stage and j in found)}
            await asyncio.sleep(0.5)
        assert not missing, f"not in their stage: {missing}"

        # Nobody works the demo's tasks: the office's overdue intake task flags its journey.
        intake = next(j.ack.journey_id for j in started if j.patient.shows == "INTAKE_INCOMPLETE")
        deadline = time.monotonic() + 30
        while True:
            page = await api.get("/v1/journeys", params={"needs_attention": True,
                                                          "page_size": 100})  # fmt: skip
            if intake in {j["journey_id"] for j in page.json()["items"]}:
                break
            assert time.monotonic() < deadline, "the overdue intake never needed attention"
            await asyncio.sleep(0.5)

        # Refills: the late patient's risk is high, filterable as in the Temporal UI
        # (`PitwallRisk = "high"`), and the profiles carry PDC and risk.
        late = next(j for j in started if j.patient.patient_id == "demo-late")
        deadline = time.monotonic() + 90
        while True:
            page = await api.get("/v1/journeys", params={"risk": "high", "page_size": 100})
            assert page.status_code == 200, page.text
            if late.ack.journey_id in {j["journey_id"] for j in page.json()["items"]}:
                break
            assert time.monotonic() < deadline, "the late patient's risk never became high"
            await asyncio.sleep(0.5)
        profile = (await api.get("/v1/patients/demo-late")).json()
        (refills,) = profile["adherence"]
        assert refills["journey_id"] == late.ack.journey_id and refills["risk_level"] == "high"
        assert any(r.startswith("late_refills") for r in refills["risk_reasons"])
        steady = (await api.get("/v1/patients/demo-on-therapy")).json()["adherence"][0]
        assert steady["pdc_year_to_date"] == 1.0 and steady["risk_level"] == "low"
        stopped = (await api.get("/v1/patients/demo-discontinued")).json()["adherence"][0]
        assert stopped["status"] == "discontinued"

        # Running the demo again finds the same journeys (idempotent), nothing new.
        async with PitwallHttpClient(stack.receiver_url, api_key=stack.admin_key) as client:
            again = await demo.start_journeys(
                client, stack.sandbox_url, "specialty_start", DEMO_TIME_SCALE
            )
        assert [j.ack.journey_id for j in again] == list(wanted)
        assert not any(j.ack.created for j in again)
    for journey_id, stage in wanted.items():  # the session's stack goes on with other tests
        if stage != "DISCONTINUED":
            await stack.journeys.cancel(journey_id, "demo_checked")
