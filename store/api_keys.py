"""API keys: who may call the /v1 API and the partner webhooks, with which scopes.

A key is shown once, when it is made: `pw_<key id>_<secret>`, e.g.
`pw_3f9a1c0b7d2e_Vq8...` (key id: 12 hex digits, public, the handle to list and revoke
it by; secret: 43 random letters and digits, about 256 bits). Only letters, digits and
`_`, so a key can also ride as the password of a basic-auth URL (Twilio callbacks).

Storage: the database keeps the key id, a label, the scopes, times, and
`HMAC-SHA256(pepper, "<key id>:<secret>")` — never the secret. The secret is random and
long, so a fast keyed hash is as strong as a slow password hash here (nothing to guess
or look up in a table); the pepper (`PITWALL_AUTH_KEY_PEPPER`, not in the database) means
a stolen database alone cannot even confirm a guessed key. Binding the key id into the
MAC stops one row's hash from vouching for another id. Comparison is constant-time.
Changing the pepper invalidates every key.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, Engine, update
from sqlmodel import Field, SQLModel, col, select

from domain.partner_actions import webhook_partners
from store.db import session
from store.memo import TtlMemo
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow

PREFIX = "pw"
KEY_ID_HEX = 12
SECRET_LENGTH = 43
_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(rf"^{PREFIX}_([0-9a-f]{{{KEY_ID_HEX}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})$")
LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is refreshed at most this often

ADMIN = "admin"
# From the partner-action registry, and the CRM work queue (its completions, api/webhooks.py).
WEBHOOK_PARTNERS = (*webhook_partners(), "crm")
SCOPES: dict[str, str] = {
    "journeys:read": "Read journeys and templates.",
    "journeys:write": "Start journeys; send events; pause, resume, cancel; journey preferences.",
    "patients:read": "Read a patient's profile (no contact details), timeline, consents, "
    "preferences.",
    "patients:write": "Grant and revoke consents; change a patient's preferences.",
    "tasks:read": "Read the task queue (a reply's own words need patients:read too).",
    "tasks:write": "Assign, reassign and complete tasks.",
    **{f"webhooks:{p}": f"Deliver {p} partner callbacks." for p in WEBHOOK_PARTNERS},
    ADMIN: "Everything (implies every other scope).",
}


class UnknownScope(ValueError):
    pass


class ApiKey(RedactedRepr, SQLModel, table=True):
    __tablename__ = "api_key"
    __phi__ = frozenset({"secret_hash"})  # not PHI, but never printed either

    key_id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100, description="Who holds it: a service or partner label.")
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    secret_hash: str = Field(max_length=64, description="hex HMAC-SHA256(pepper, id:secret)")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole presented key, `pw_<id>_<secret>`: shown once, never stored

    @property
    def key_id(self) -> str:
        return self.key.key_id


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, deduplicated in a stable order; UnknownScope if one is not known."""
    wanted = list(dict.fromkeys(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise UnknownScope(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not wanted:
        raise UnknownScope("a key needs at least one scope")
    return wanted


def parse(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY.match(presented.strip())
    return (match.group(1), match.group(2)) if match else None


# A verified key is trusted this long without reading the store again: a key revoked
# elsewhere (the CLI, another API server) stops working within this many seconds.
VERIFIED_FOR_SECONDS = 5.0


class ApiKeyRepository:
    def __init__(self, engine: Engine, pepper: str) -> None:
        self.engine = engine
        self._pepper = pepper.encode()
        self._verified: TtlMemo[str, ApiKey] = TtlMemo(VERIFIED_FOR_SECONDS)

    def _hash(self, key_id: str, secret: str) -> str:
        if not self._pepper:
            raise RuntimeError("no API key pepper configured (PITWALL_AUTH_KEY_PEPPER)")
        return hmac.new(self._pepper, f"{key_id}:{secret}".encode(), hashlib.sha256).hexdigest()

    def create(self, name: str, scopes: Iterable[str]) -> NewKey:
        """Make a key; the returned `secret` is the only copy of it there will ever be."""
        checked = check_scopes(scopes)
        name = name.strip()
        if not name or len(name) > 100:
            raise ValueError("name must be 1-100 characters")
        key_id = secrets.token_hex(KEY_ID_HEX // 2)
        secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
        row = ApiKey(
            key_id=key_id, name=name, scopes=checked, secret_hash=self._hash(key_id, secret)
        )
        with session(self.engine) as s:
            s.add(row)
            s.commit()
        return NewKey(row, f"{PREFIX}_{key_id}_{secret}")

    def verify(self, presented: str, *, at: datetime | None = None) -> ApiKey | None:
        """The active key this is, or None (malformed, unknown, wrong secret, revoked)."""
        parts = parse(presented)
        if parts is None:
            return None
        key_id, secret = parts
        expected = self._hash(key_id, secret)
        if (known := self._verified.get(expected)) is not None:
            return known
        with session(self.engine) as s:
            row = s.get(ApiKey, key_id)
        stored = row.secret_hash if row is not None else "0" * 64
        if not hmac.compare_digest(expected, stored) or row is None or not row.active:
            return None
        now = at or utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            with session(self.engine) as s:
                s.execute(
                    update(ApiKey).where(col(ApiKey.key_id) == key_id).values(last_used_at=now)
                )
                s.commit()
            row.last_used_at = now
        self._verified.put(expected, row)
        return row

    def remembered(self, presented: str) -> ApiKey | None:
        """The key if this process verified it within the window: no I/O (async callers
        ask this before they hand `verify` to a thread)."""
        parts = parse(presented)
        return self._verified.get(self._hash(*parts)) if parts is not None else None

    def revoke(self, key_id: str, *, at: datetime | None = None) -> ApiKey | None:
        """Revoke (once; revoking again keeps the first time). None if no such key.
        In this process it takes effect at once; elsewhere within VERIFIED_FOR_SECONDS."""
        self._verified.clear()
        with session(self.engine) as s:
            s.execute(
                update(ApiKey)
                .where(col(ApiKey.key_id) == key_id, col(ApiKey.revoked_at).is_(None))
                .values(revoked_at=at or utcnow())
            )
            s.commit()
            return s.get(ApiKey, key_id, populate_existing=True)

    def get(self, key_id: str) -> ApiKey | None:
        with session(self.engine) as s:
            return s.get(ApiKey, key_id)

    def list(self, *, include_revoked: bool = True) -> builtins.list[ApiKey]:
        query = select(ApiKey)
        if not include_revoked:
            query = query.where(col(ApiKey.revoked_at).is_(None))
        with session(self.engine) as s:
            return list(s.exec(query.order_by(col(ApiKey.created_at), col(ApiKey.key_id))))
