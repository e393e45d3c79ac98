"""Helpers for the interpreter suite: templates from YAML text, journeys on a virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from domain.journey import JourneyStart
from domain.partners import PartnerEvent
from domain.template import JourneyTemplate
from simulate.runtime import Simulated, VirtualRuntime, run_journey

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York


def template(text: str) -> JourneyTemplate:
    return JourneyTemplate.model_validate(yaml.safe_load(text))


def event(type_: str, key: str, event_id: str | None = None, **data: Any) -> PartnerEvent:
    return PartnerEvent(
        event_id=event_id or f"{type_}:{key}",
        type=type_,
        correlation_key=key,
        occurred_at=T0,
        data=data,
    )


async def simulate(
    tpl: JourneyTemplate,
    answers: dict[str, Any] | None = None,
    events: list[tuple[timedelta, PartnerEvent]] = (),  # type: ignore[assignment]
    setup: Callable[[VirtualRuntime], None] | None = None,
    switch_every: int | None = None,
    **start: Any,
) -> Simulated:
    """Run a journey to its end; `events` arrive at T0 + offset (journey time)."""

    def prepare(rt: VirtualRuntime) -> None:
        for offset, ev in events:
            rt.deliver(ev, T0 + offset)
        if setup is not None:
            setup(rt)

    journey = JourneyStart(template=tpl, patient_ref="pt-test1", program="demo", **start)
    return await run_journey(
        journey,
        lambda state: VirtualRuntime(state, now=T0, answers=answers, switch_every=switch_every),
        setup=prepare,
    )
