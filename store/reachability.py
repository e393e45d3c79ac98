"""Addresses a gateway told us cannot take a channel (Twilio 30006: a landline).

Kept per patient, channel and address, so SMS stops going to a landline number while
voice calls to it, and a new number on file is tried afresh. The address is stored as a
digest: this table needs to recognise a number, not to hold it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Engine, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select

from store.db import insert_ignore, session
from store.types import UtcDateTime, utcnow


def address_digest(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]


class UnreachableAddress(SQLModel, table=True):
    __tablename__ = "unreachable_address"
    __table_args__ = (UniqueConstraint("patient_ref", "channel", "address_digest"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=16)
    address_digest: str = Field(max_length=32)
    reason: str = Field(max_length=64, description="e.g. landline (Twilio 30006).")
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ReachabilityRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mark(self, patient_ref: str, channel: str, address: str, reason: str) -> bool:
        row = {
            "patient_ref": patient_ref, "channel": channel,
            "address_digest": address_digest(address), "reason": reason, "at": utcnow(),
        }  # fmt: skip
        with session(self.engine) as s:
            inserted = insert_ignore(s, UnreachableAddress.__table__, row)  # type: ignore[attr-defined]
            s.commit()
            return inserted

    @staticmethod
    def blocked(s: Session, patient_ref: str) -> set[tuple[str, str]]:
        """(channel, address digest) pairs that cannot take that channel, for one patient
        (read inside the caller's transaction: the contact gate's)."""
        rows = s.exec(
            select(UnreachableAddress).where(UnreachableAddress.patient_ref == patient_ref)
        )
        return {(r.channel, r.address_digest) for r in rows}
