"""The unified timeline: what happened to a patient, in order, across every journey.

Activities record journey milestones, partner calls and callbacks, messages and replies,
human tasks and operator actions. Each entry has a unique idempotency key (derive it
from workflow id + step id + visit, or the partner's event id, never the attempt), so a
replayed or retried activity never doubles an entry. Summaries are short codes, not
prose: they hold no personal data beyond the pseudonymous ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, field_validator, model_validator
from sqlalchemy import JSON, Engine, Index, UniqueConstraint, func
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import insert_ignore
from store.db import session as open_session
from store.types import UtcDateTime, utcnow

REF = 64
SUMMARY_MAX = 200
_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


class TimelineType(StrEnum):
    """The entry types activities record (others of the same `area.what` shape are allowed)."""

    JOURNEY_STARTED = "journey.started"
    JOURNEY_MILESTONE = "journey.milestone"
    JOURNEY_ENDED = "journey.ended"
    PARTNER_CALL = "partner.call"
    PARTNER_CALLBACK = "partner.callback"
    MESSAGE_SENT = "message.sent"
    MESSAGE_SUPPRESSED = "message.suppressed"
    MESSAGE_DEFERRED = "message.deferred"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_REPLY = "message.reply"
    TASK_OPENED = "task.opened"
    TASK_ESCALATED = "task.escalated"
    TASK_COMPLETED = "task.completed"
    OPERATOR_ACTION = "operator.action"
    CONSENT_CHANGED = "consent.changed"
    PREFERENCES_CHANGED = "preferences.changed"
    PATIENT_REGISTERED = "patient.registered"
    PATIENT_UPDATED = "patient.updated"
    PATIENT_ERASED = "patient.erased"


class TimelineEvent(SQLModel):
    """The input of `TimelineRepository.record`."""

    idempotency_key: str = Field(max_length=300)
    patient_ref: str = Field(max_length=REF)
    journey_ref: str | None = Field(default=None, max_length=300)
    type: str = Field(max_length=64, description="`area.what`, see TimelineType.")
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    summary: str = Field(
        default="", max_length=SUMMARY_MAX, description="Codes, not prose; no PHI."
    )
    correlation: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON, description="PA number, Rx id, message id, task id..."
    )

    @field_validator("type")
    @classmethod
    def _known_shape(cls, value: str) -> str:
        if not _TYPE.match(value):
            raise ValueError("type must look like 'area.what', e.g. partner.callback")
        return value

    @field_validator("summary", mode="before")
    @classmethod
    def _short(cls, value: str) -> str:
        return value if len(value) <= SUMMARY_MAX else value[: SUMMARY_MAX - 1] + "…"

    @model_validator(mode="before")
    @classmethod
    def _journey_id(cls, data: Any) -> Any:
        # domain.timeline.TimelineNote says journey_id; the store says journey_ref.
        if isinstance(data, dict) and "journey_id" in data and "journey_ref" not in data:
            data = {**data, "journey_ref": data["journey_id"]}
            del data["journey_id"]
        return data


class TimelineEntry(TimelineEvent, table=True):
    __tablename__ = "timeline_entry"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index(None, "patient_ref", "occurred_at"),
        Index(None, "journey_ref", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    redacted: bool = Field(default=False, description="Summary and correlation erased (forgotten).")


class TimelineRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, entry: TimelineEvent | BaseModel, *, session: Session | None = None) -> bool:
        """Add the entry unless its idempotency key is already there; True if inserted.

        Takes a `TimelineEvent` or any model of the same fields (e.g. `TimelineNote`).
        With `session`, the entry joins that session's transaction (the caller commits)."""
        event = TimelineEvent.model_validate(entry.model_dump())  # validated, also for notes
        if session is not None:
            return _insert(session, event)
        with open_session(self.engine) as s:
            inserted = _insert(s, event)
            s.commit()
            return inserted

    def record_many(self, entries: Sequence[TimelineEvent | BaseModel]) -> int:
        """`record` for a batch, in one transaction; how many were new."""
        events = [TimelineEvent.model_validate(e.model_dump()) for e in entries]
        with open_session(self.engine) as s:
            inserted = sum(_insert(s, event) for event in events)
            s.commit()
            return inserted

    def for_patient(
        self,
        patient_ref: str,
        *,
        journey_ref: str | None = None,
        types: tuple[str, ...] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """The patient's entries in order (time, then the order recorded)."""
        query = select(TimelineEntry).where(TimelineEntry.patient_ref == patient_ref)
        if journey_ref is not None:
            query = query.where(TimelineEntry.journey_ref == journey_ref)
        if types is not None:
            query = query.where(col(TimelineEntry.type).in_(types))
        if since is not None:
            query = query.where(col(TimelineEntry.occurred_at) >= since)
        if until is not None:
            query = query.where(col(TimelineEntry.occurred_at) < until)
        query = query.order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        if limit is not None:
            query = query.limit(limit)
        with open_session(self.engine) as s:
            return list(s.exec(query))

    def journeys_of(self, patient_ref: str) -> list[str]:
        """Journeys of the patient that started and have not ended, by the timeline."""
        with open_session(self.engine) as s:
            rows = s.exec(
                select(TimelineEntry.journey_ref, TimelineEntry.type).where(
                    TimelineEntry.patient_ref == patient_ref,
                    col(TimelineEntry.type).in_(("journey.started", "journey.ended")),
                )
            )
            started: set[str] = set()
            ended: set[str] = set()
            for journey_ref, kind in rows:
                if journey_ref:
                    (started if kind == "journey.started" else ended).add(journey_ref)
            return sorted(started - ended)

    def for_journey(self, journey_ref: str) -> list[TimelineEntry]:
        with open_session(self.engine) as s:
            return list(
                s.exec(
                    select(TimelineEntry)
                    .where(TimelineEntry.journey_ref == journey_ref)
                    .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
                )
            )

    def counts(self, patient_ref: str) -> dict[str, int]:
        """Entries per type: what survives erasure unchanged."""
        with open_session(self.engine) as s:
            rows = s.exec(
                select(TimelineEntry.type, func.count())
                .where(TimelineEntry.patient_ref == patient_ref)
                .group_by(TimelineEntry.type)
            )
            return {type_: int(n) for type_, n in rows}


def _insert(s: Session, event: TimelineEvent) -> bool:
    return insert_ignore(
        s,
        TimelineEntry.__table__,  # type: ignore[attr-defined]
        {**event.model_dump(), "recorded_at": utcnow(), "redacted": False},
        conflict=("idempotency_key",),
    )
