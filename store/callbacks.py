"""Partner callbacks no journey could take: kept for operator review, never dropped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, Text
from sqlmodel import Field, SQLModel, col, select

from domain.journey import patient_of
from domain.partners import PartnerEvent
from store.db import session
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow


class UnmatchedCallback(RedactedRepr, SQLModel, table=True):
    __tablename__ = "unmatched_callback"
    __phi__ = frozenset({"payload"})

    id: int | None = Field(default=None, primary_key=True)
    partner: str = Field(max_length=32)
    event_id: str = Field(index=True, max_length=200)
    event_type: str = Field(max_length=64)
    correlation_key: str = Field(max_length=200)
    journey_ref: str | None = Field(default=None, max_length=300)
    patient_ref: str | None = Field(default=None, index=True, max_length=64)
    reason: str = Field(max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    payload: str | None = Field(
        default=None, sa_type=Text, description="The parsed event as JSON (may hold PHI)."
    )


class CallbackRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keep(self, partner: str, event: PartnerEvent, reason: str) -> UnmatchedCallback:
        row = UnmatchedCallback(
            partner=partner,
            event_id=event.event_id,
            event_type=event.type,
            correlation_key=event.correlation_key,
            journey_ref=event.journey_ref,
            patient_ref=patient_of(event.journey_ref),
            reason=reason,
            payload=event.model_dump_json(),
        )
        with session(self.engine) as s:
            s.add(row)
            s.commit()
            return row

    def kept_for(self, correlation_key: str, reason: str) -> list[PartnerEvent]:
        """Events kept under `reason` for one partner reference, oldest first: e.g. a
        receipt that came before we knew the message's id."""
        with session(self.engine) as s:
            rows = s.exec(
                select(UnmatchedCallback)
                .where(
                    UnmatchedCallback.correlation_key == correlation_key,
                    UnmatchedCallback.reason == reason,
                )
                .order_by(col(UnmatchedCallback.id))
            )
            return [PartnerEvent.model_validate_json(r.payload) for r in rows if r.payload]

    def recent(self, limit: int = 100) -> list[UnmatchedCallback]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(UnmatchedCallback)
                    .order_by(col(UnmatchedCallback.id).desc())
                    .limit(limit)
                )
            )
