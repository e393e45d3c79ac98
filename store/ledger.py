"""The contact ledger: one row per outbound contact decision, keyed by an idempotency key.

A row is created once per key (INSERT ... ON CONFLICT DO NOTHING on the unique key, so
retries, replays and concurrent workers make one row) and then moves through guarded
transitions; every transition appends a `contact_event`, so the history is kept:

    planned ──> sending ──> sent ──> delivered
       │  │        │  │        └────> failed
       │  │        │  └──> unknown (the gateway may have it; reconcile could not tell)
       │  │        └─────> failed (rejected)
       │  └──> suppressed (reason)        deferred ──> deferred | sending | suppressed
       └─────> deferred (until, reason)

`sending` is written, in the decision's transaction, before the gateway is called: a
retry that finds a row `sending` with no provider id reconciles with the gateway instead
of sending again (activities/messaging.py).

`dedupe_key` (optional, unique per patient) enforces "the same content is never sent twice
for the same reason" across journeys. The ledger holds no address or message text: only
codes, so caps can be counted across journeys without touching PHI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from sqlalchemy import Engine, Index, String, UniqueConstraint, func, update
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import insert_ignore, session
from store.timeline import TimelineEvent, TimelineRepository
from store.types import UtcDateTime, utcnow

REF = 64

ContactStatus = Literal[
    "planned", "sending", "sent", "deferred", "suppressed", "delivered", "failed", "unknown"
]
TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"sending", "sent", "deferred", "suppressed", "failed"}),
    "deferred": frozenset({"deferred", "sending", "sent", "suppressed", "failed"}),
    # Back to planned: the gateway answered 5xx, so it did not take it; decided again.
    "sending": frozenset({"planned", "sent", "delivered", "failed", "unknown"}),
    "sent": frozenset({"delivered", "failed"}),
    # An operator (or a late receipt) can still settle what reconciliation could not.
    "unknown": frozenset({"sent", "delivered", "failed"}),
    "suppressed": frozenset(),
    "delivered": frozenset(),
    "failed": frozenset(),
}
# What counts against frequency caps and dedupe: contacts that went, are going, or may
# have gone out.
CONTACTED = ("sending", "sent", "delivered", "unknown")


class ContactPlan(SQLModel):
    """The input of `ContactLedger.record`: one contact decision."""

    idempotency_key: str = Field(max_length=300, description="Workflow id / step id / visit.")
    patient_ref: str = Field(max_length=REF)
    journey_ref: str | None = Field(default=None, max_length=300)
    program: str = Field(max_length=REF)
    step_id: str | None = Field(default=None, max_length=100)
    channel: str = Field(max_length=16)
    purpose: str = Field(max_length=16)
    message_class: str = Field(default="operational", max_length=16)
    status: ContactStatus = Field(default="planned", sa_type=String(16))
    reason: str | None = Field(
        default=None, max_length=64, description="Why suppressed / deferred."
    )
    defer_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    dedupe_key: str | None = Field(
        default=None, max_length=200, description="Content + reason; unique per patient when set."
    )
    provider_message_id: str | None = Field(default=None, max_length=100)
    content_ref: str | None = Field(
        default=None, max_length=100, description="Approved content, e.g. welcome@1."
    )
    attempt: int = Field(default=0, description="0 first channel; n the n-th fallback.")
    awaits_receipt: bool = Field(
        default=False, description="A journey waits for this receipt to fall back."
    )
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ContactLedgerEntry(ContactPlan, table=True):
    __tablename__ = "contact_ledger"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("patient_ref", "dedupe_key"),
        Index(None, "patient_ref", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sent_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="Counted by caps."
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ContactEvent(SQLModel, table=True):
    """Append-only history of a ledger row's states."""

    __tablename__ = "contact_event"

    id: int | None = Field(default=None, primary_key=True)
    ledger_id: int = Field(foreign_key="contact_ledger.id", index=True)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Recorded(NamedTuple):
    inserted: bool  # False: the key (or the dedupe key) was already there
    entry: ContactLedgerEntry  # the row that holds the key: ours, or the earlier one


class ContactLedger:
    def __init__(self, engine: Engine) -> None:
        self.timeline = TimelineRepository(engine)
        self.engine = engine

    def record(self, plan: ContactPlan) -> Recorded:
        """Record a contact decision once per idempotency key (and per patient dedupe key).

        Atomic: of any number of concurrent writers with one key exactly one inserts; the
        others get `inserted=False` and the row already there."""
        values = plan.model_dump()
        now = utcnow()
        with session(self.engine) as s:
            sent_at = plan.decided_at if plan.status in ("sending", "sent") else None
            row = {**values, "updated_at": now, "sent_at": sent_at}
            inserted = insert_ignore(s, ContactLedgerEntry.__table__, row)  # type: ignore[attr-defined]
            entry = self._by_key(s, plan.idempotency_key)
            if entry is None and plan.dedupe_key is not None:
                entry = s.exec(
                    select(ContactLedgerEntry).where(
                        ContactLedgerEntry.patient_ref == plan.patient_ref,
                        ContactLedgerEntry.dedupe_key == plan.dedupe_key,
                    )
                ).one()
            assert entry is not None and entry.id is not None
            if inserted:
                s.add(
                    ContactEvent(
                        ledger_id=entry.id,
                        status=plan.status,
                        reason=plan.reason,
                        at=plan.decided_at,
                    )
                )
            s.commit()
            return Recorded(inserted, entry)

    def transition(
        self,
        idempotency_key: str,
        status: ContactStatus,
        *,
        reason: str | None = None,
        provider_message_id: str | None = None,
        defer_until: datetime | None = None,
        at: datetime | None = None,
        note: TimelineEvent | None = None,
    ) -> bool:
        """Move a row to `status` if the transition is allowed from where it is now, with
        `note` on the timeline in the same transaction.

        False (nothing written) for an unknown key, a repeat, or a step backwards (e.g. a
        late `sent` callback after `delivered`). Guarded in the UPDATE, so it is atomic."""
        allowed_from = sorted(k for k, targets in TRANSITIONS.items() if status in targets)
        at = at or utcnow()
        values: dict[str, object] = {"status": status, "reason": reason, "updated_at": at}
        if provider_message_id is not None:
            values["provider_message_id"] = provider_message_id
        if status == "deferred":
            values["defer_until"] = defer_until
        if status in ("sending", "sent"):  # caps count from the moment it goes
            values["sent_at"] = func.coalesce(col(ContactLedgerEntry.sent_at), at)
        with session(self.engine) as s:
            result = s.execute(
                update(ContactLedgerEntry)
                .where(
                    col(ContactLedgerEntry.idempotency_key) == idempotency_key,
                    col(ContactLedgerEntry.status).in_(allowed_from),
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                s.rollback()
                return False
            entry = self._by_key(s, idempotency_key)
            assert entry is not None and entry.id is not None
            s.add(ContactEvent(ledger_id=entry.id, status=status, reason=reason, at=at))
            if note is not None:
                self.timeline.record(note, session=s)
            s.commit()
            return True

    def get(self, idempotency_key: str) -> ContactLedgerEntry | None:
        with session(self.engine) as s:
            return self._by_key(s, idempotency_key)

    def by_provider_message_id(self, provider_message_id: str) -> ContactLedgerEntry | None:
        """The row of a message a gateway knows by its id (for delivery callbacks)."""
        with session(self.engine) as s:
            return s.exec(
                select(ContactLedgerEntry).where(
                    ContactLedgerEntry.provider_message_id == provider_message_id
                )
            ).first()

    def events(self, idempotency_key: str) -> list[ContactEvent]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(ContactEvent)
                    .join(ContactLedgerEntry, col(ContactEvent.ledger_id) == ContactLedgerEntry.id)
                    .where(ContactLedgerEntry.idempotency_key == idempotency_key)
                    .order_by(col(ContactEvent.id))
                )
            )

    def for_patient(
        self,
        patient_ref: str,
        *,
        since: datetime | None = None,
        channel: str | None = None,
        purpose: str | None = None,
        statuses: tuple[str, ...] | None = None,
    ) -> list[ContactLedgerEntry]:
        """What was decided for this patient, across all journeys and programs, oldest first."""
        query = select(ContactLedgerEntry).where(ContactLedgerEntry.patient_ref == patient_ref)
        if since is not None:
            query = query.where(col(ContactLedgerEntry.decided_at) >= since)
        if channel is not None:
            query = query.where(ContactLedgerEntry.channel == channel)
        if purpose is not None:
            query = query.where(ContactLedgerEntry.purpose == purpose)
        if statuses is not None:
            query = query.where(col(ContactLedgerEntry.status).in_(statuses))
        with session(self.engine) as s:
            return list(
                s.exec(
                    query.order_by(col(ContactLedgerEntry.decided_at), col(ContactLedgerEntry.id))
                )
            )

    def count_contacted(
        self,
        patient_ref: str,
        *,
        since: datetime,
        channel: str | None = None,
        purpose: str | None = None,
    ) -> int:
        """Contacts sent since `since` (and not failed): the input of frequency caps."""
        query = select(func.count()).where(
            col(ContactLedgerEntry.patient_ref) == patient_ref,
            col(ContactLedgerEntry.sent_at) >= since,
            col(ContactLedgerEntry.status).in_(CONTACTED),
        )
        if channel is not None:
            query = query.where(col(ContactLedgerEntry.channel) == channel)
        if purpose is not None:
            query = query.where(col(ContactLedgerEntry.purpose) == purpose)
        with session(self.engine) as s:
            return int(s.exec(query).one())

    @staticmethod
    def _by_key(s: Session, idempotency_key: str) -> ContactLedgerEntry | None:
        return s.exec(
            select(ContactLedgerEntry).where(ContactLedgerEntry.idempotency_key == idempotency_key)
        ).first()
