"""Five years of refill_adherence on a real dev server (time skipping): is it bounded?

    PYTHONPATH=. .venv/bin/python bench/refill_years.py [--years 5] [--suggest-after 400]

One journey, a 28-day fill every cycle (some late, so it goes AT_RISK and back), on a dev
server that suggests continue-as-new after `--suggest-after` history events. Prints, per
year: the runs so far, the largest run's events and bytes, and the size of what one run
hands the next (the workflow input: template snapshot plus JourneyMemory). Bounded
means the last two stop growing with the years. The workflow-test fakes stand in for
partners (no HTTP): this measures the journey, not the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment
from temporalio.worker import Worker

from devtools.temporal_cli import temporal_cli_path
from domain.journey import JourneyStart
from domain.partners import PartnerEvent
from domain.template_loader import get_template
from gateway.journeys import JourneyGateway
from tests.workflows.fakes import ScriptedPartners
from workflows import search_attributes as sa
from workflows.journey import TherapyJourney
from workflows.sandbox import journey_runner

RX = "RX-BENCH-1"
ANSWERS = {
    "pharmacy.enroll_refills": {"rx_id": RX},
    "payer.verify_benefits": {"coverage_active": True, "pa_required": False},
    "copay.enroll": {"enrollment_id": "CP-1", "outcome": "approved"},
}


def history_bytes(history: WorkflowHistory) -> int:
    return len(history.to_json())


def input_bytes(history: WorkflowHistory) -> int:
    first = history.events[0].workflow_execution_started_event_attributes
    return sum(len(p.data) for p in first.input.payloads)


async def main(years: int, suggest_after: int) -> None:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
            "--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={suggest_after}",
        ],
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )  # fmt: skip
    async with env:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        partners = ScriptedPartners(ANSWERS)
        partners.client = env.client
        partners.receipts = {"sms": "delivered", "email": "delivered"}
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[TherapyJourney],
            workflow_runner=journey_runner(),
            activities=partners.activities(),
        ):
            journeys = JourneyGateway(env.client, queue)
            ack = await journeys.start(
                JourneyStart(template=get_template("refill_adherence"), patient_ref="pt-bench5y",
                             program="demo", context={"timezone": "America/New_York"})
            )  # fmt: skip
            jid = ack.journey_id
            state = await journeys.state(jid)
            for _ in range(200):  # until the enrollment answered and the watch began
                if state.refill is not None:
                    break
                await asyncio.sleep(0.05)
                state = await journeys.state(jid)
            assert state.refill is not None
            day = state.refill.enrolled_on
            cycles = years * 13
            print("year  runs  max events/run  max bytes/run  input bytes  state bytes")
            for n in range(cycles):
                late = 9 if n % 9 == 8 else 0  # now and then late enough for AT_RISK
                if late:
                    await env.fast_forward(journeys.handle(jid), timedelta(days=late))
                    day += timedelta(days=late)
                handed = datetime.combine(day, time(15, 0), UTC)
                await journeys.send_event(jid, PartnerEvent(
                    event_id=f"evt-{n}", type="pharmacy.dispensed", correlation_key=RX,
                    occurred_at=handed, data={
                        "rx_id": RX, "dispense_id": f"md-{n}", "dispense_status": "completed",
                        "is_fill": True, "days_supply": 28, "dispensed_at": handed.isoformat(),
                        "drug_groups": ["zorvexa"]}))  # fmt: skip
                await env.fast_forward(journeys.handle(jid), timedelta(days=28))
                day += timedelta(days=28)
                if (n + 1) % 13 == 0:
                    runs = [h async for h in _histories(env, jid)]
                    state = await journeys.state(jid)
                    events = max(len(h.events) for h in runs)
                    biggest = max(history_bytes(h) for h in runs)
                    sent_on, kept = input_bytes(runs[-1]), len(state.model_dump_json())
                    year = (n + 1) // 13
                    print(
                        f"{year:>4}  {len(runs):>4}  {events:>14}  {biggest:>13}  {sent_on:>11}  "
                        f"{kept:>11}"
                    )
            state = await journeys.state(jid)
            assert state.refill is not None
            print(json.dumps({"fills": state.refill.fills_counted, "kept": len(state.refill.fills),
                              "years_closed": [y.year for y in state.refill.pdc_by_year],
                              "at_risk_episodes": state.refill.at_risk_episodes}))  # fmt: skip


async def _histories(env: WorkflowEnvironment, jid: str) -> AsyncIterator[WorkflowHistory]:
    executions = [e async for e in env.client.list_workflows(f"WorkflowId = '{jid}'")]
    executions.sort(key=lambda e: e.start_time)
    for e in executions:
        yield await env.client.get_workflow_handle(jid, run_id=e.run_id).fetch_history()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--suggest-after", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(main(args.years, args.suggest_after))
