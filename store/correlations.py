"""Partner reference → journey: how a callback that did not echo our journey reference
(a PA number, an Rx id, a consent request id) still finds its journey."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, UniqueConstraint
from sqlmodel import Field, SQLModel, select

from store.db import insert_ignore, session
from store.types import UtcDateTime, utcnow


class Correlation(SQLModel, table=True):
    __tablename__ = "correlation"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, description="pa_number, rx_id, request_id...")
    value: str = Field(max_length=200, index=True)
    journey_ref: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CorrelationRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def remember(self, kind: str, value: str, journey_ref: str) -> bool:
        """Idempotent: the first journey to claim a reference keeps it."""
        with session(self.engine) as s:
            inserted = insert_ignore(
                s,
                Correlation.__table__,  # type: ignore[attr-defined]
                {"kind": kind, "value": value, "journey_ref": journey_ref, "created_at": utcnow()},
                conflict=("kind", "value"),
            )
            s.commit()
            return inserted

    def journey_for(self, value: str) -> str | None:
        """The journey a partner reference belongs to (any kind), if one claimed it."""
        with session(self.engine) as s:
            row = s.exec(select(Correlation).where(Correlation.value == value)).first()
            return row.journey_ref if row else None
