"""What the store remembers in-process, and how soon a change made elsewhere wins."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from store import Store
from store import memo as memo_module
from store.api_keys import VERIFIED_FOR_SECONDS, ApiKeyRepository
from store.identities import KNOWN_FOR_SECONDS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(memo_module.time, "monotonic", clock)
    return clock


def test_a_key_revoked_elsewhere_stops_working_within_its_window(
    engine: Engine, clock: Clock
) -> None:
    here, elsewhere = ApiKeyRepository(engine, "pepper"), ApiKeyRepository(engine, "pepper")
    key = here.create("memo-test", ["journeys:read"]).secret
    assert here.verify(key) is not None
    elsewhere.revoke(key.split("_")[1])
    assert elsewhere.verify(key) is None  # where it was revoked: at once
    clock.now += VERIFIED_FOR_SECONDS + 0.1
    assert here.verify(key) is None  # elsewhere: once the window has passed


def test_an_erased_link_is_forgotten_here_at_once_and_elsewhere_within_its_window(
    engine: Engine, clock: Clock
) -> None:
    here, elsewhere = Store(engine), Store(engine)
    ref = here.identities.pseudonym("MRN-0777001")
    here.patients.upsert(ref)
    assert elsewhere.identities.resolve("MRN-0777001") == ref
    here.forget(ref)
    assert here.identities.resolve("MRN-0777001") is None
    clock.now += KNOWN_FOR_SECONDS + 0.1
    assert elsewhere.identities.resolve("MRN-0777001") is None
