"""Patient identities: the external id a caller sends (an MRN, a hub case id) → Pitwall's
own random pseudonym, the only patient id used anywhere else (workflows, partners, logs).

The external id itself is not stored: the table keys the pseudonym by
`HMAC-SHA256(key, external id)` (the key: `PITWALL_AUTH_PATIENT_ID_KEY`, not in the
database), so a stolen database alone cannot even confirm a guessed MRN. Erasure
(`store.erasure.forget`) deletes the row: the external id no longer leads to the
pseudonym. Errors never echo an external id.

    identities = PatientIdentities(engine, key)
    ref = identities.pseudonym("MRN-0042")      # get or create: "pt-" + 16 base32 letters
    identities.resolve("MRN-0042")              # the same ref, or None; never writes
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import Engine, UniqueConstraint
from sqlmodel import Field, SQLModel, select

from domain.journey import check_pseudonym
from store.db import insert_ignore, session
from store.memo import TtlMemo
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow

REF = 64
EXTERNAL_ID_MAX = 128
_EXTERNAL_ID = re.compile(rf"[\x21-\x7e]{{1,{EXTERNAL_ID_MAX}}}")  # printable ASCII, no space
PREFIX = "pt-"
# The key `Store` uses when given none: the development default of
# PITWALL_AUTH_PATIENT_ID_KEY. Development and tests only; production sets its own.
DEVELOPMENT_KEY = b"dev-patient-id-key"


class InvalidExternalId(ValueError):
    """An external patient id of the wrong shape (the message never holds the value)."""

    def __init__(self) -> None:
        super().__init__(
            f"external patient id must be 1-{EXTERNAL_ID_MAX} printable ASCII characters "
            "without spaces"
        )


class PatientIdentity(RedactedRepr, SQLModel, table=True):
    __tablename__ = "patient_identity"
    __table_args__ = (UniqueConstraint("patient_ref"),)
    __phi__ = frozenset({"id_hash"})  # links a pseudonym to a person: never printed

    id_hash: str = Field(
        primary_key=True, max_length=64, description="hex HMAC-SHA256(key, external id)"
    )
    patient_ref: str = Field(max_length=REF)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


def new_pseudonym() -> str:
    """`pt-` + 16 lowercase base32 letters (80 random bits)."""
    while True:
        ref = PREFIX + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        try:
            return check_pseudonym(ref, "patient_ref")
        except ValueError:  # pragma: no cover - 16 digits in a row: about 1 in 10^12
            continue


# A pseudonym found is remembered this long in the process: an erasure done elsewhere
# unlinks the id for this process within this many seconds (here, at once).
KNOWN_FOR_SECONDS = 30.0


class PatientIdentities:
    def __init__(self, engine: Engine, key: bytes) -> None:
        if not key:
            raise ValueError("the patient id key must not be empty")
        self.engine = engine
        self._key = key
        self._known: TtlMemo[str, str] = TtlMemo(KNOWN_FOR_SECONDS)

    def id_hash(self, external_id: str) -> str:
        if not isinstance(external_id, str) or not _EXTERNAL_ID.fullmatch(external_id):
            raise InvalidExternalId()
        return hmac.new(self._key, external_id.encode("ascii"), hashlib.sha256).hexdigest()

    def resolve(self, external_id: str) -> str | None:
        """The pseudonym of this external id, or None if it has none (nothing written)."""
        id_hash = self.id_hash(external_id)
        if (known := self._known.get(id_hash)) is not None:
            return known
        with session(self.engine) as s:
            found = s.exec(
                select(PatientIdentity.patient_ref).where(PatientIdentity.id_hash == id_hash)
            ).first()
        if found is not None:
            self._known.put(id_hash, found)
        return found

    def remembered(self, external_id: str) -> str | None:
        """The pseudonym if this process knows it already: no I/O (async callers ask this
        before they hand `resolve` to a thread)."""
        return self._known.get(self.id_hash(external_id))

    def forget(self) -> None:
        """Drop what this process remembers (after an erasure unlinked an id)."""
        self._known.clear()

    def pseudonym(self, external_id: str) -> str:
        """The pseudonym of this external id, made on first use. Safe under concurrency:
        of many callers with one new external id, one inserts and all get its pseudonym."""
        id_hash = self.id_hash(external_id)
        found = self.resolve(external_id)
        while found is None:
            with session(self.engine) as s:
                # Any unique key: a clash on the pseudonym (never seen) just draws again.
                insert_ignore(
                    s,
                    PatientIdentity.__table__,  # type: ignore[attr-defined]
                    {"id_hash": id_hash, "patient_ref": new_pseudonym(), "created_at": utcnow()},
                )
                found = s.exec(
                    select(PatientIdentity.patient_ref).where(PatientIdentity.id_hash == id_hash)
                ).first()
                s.commit()
        self._known.put(id_hash, found)
        return found
