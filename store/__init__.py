"""The Pitwall store: the patient record, consents, preferences, the contact ledger and the
unified timeline, on SQLite (default) or PostgreSQL (`DATABASE_URL`).

    from store import Store
    store = Store.open(settings.stack.database())     # engine + migrations to head
    store.timeline.record(TimelineEvent(...))
    ref = store.identities.pseudonym(external_id)   # the caller's id -> Pitwall's pseudonym
    store.changes.grant_consent(ref, grant, actor)  # change + timeline note, one transaction
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from store.api_keys import ApiKeyRepository
from store.callbacks import CallbackRepository
from store.consents import ConsentRepository, PreferenceRepository
from store.correlations import CorrelationRepository
from store.db import make_engine, migrate
from store.erasure import ErasureReport, forget
from store.identities import DEVELOPMENT_KEY, PatientIdentities
from store.ledger import ContactLedger
from store.patient_changes import PatientChanges
from store.patients import PatientDirectory, PatientRepository
from store.reachability import ReachabilityRepository
from store.tasks import TaskRepository
from store.timeline import TimelineRepository


class Store:
    """Every repository over one engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        api_key_pepper: str = "",
        patient_id_key: bytes = DEVELOPMENT_KEY,
    ) -> None:
        self.engine = engine
        # API keys need the pepper (settings.auth.key_pepper); without one they refuse to work.
        self.api_keys = ApiKeyRepository(engine, api_key_pepper)
        # External patient ids -> pseudonyms, keyed by settings.auth.patient_id_key. The
        # default is that setting's development value: for development and tests only.
        self.identities = PatientIdentities(engine, patient_id_key)
        self.patients = PatientRepository(engine)
        self.consents = ConsentRepository(engine)
        self.preferences = PreferenceRepository(engine)
        self.ledger = ContactLedger(engine)
        self.timeline = TimelineRepository(engine)
        self.callbacks = CallbackRepository(engine)
        self.correlations = CorrelationRepository(engine)
        self.directory = PatientDirectory(engine)
        self.tasks = TaskRepository(engine)
        self.reachability = ReachabilityRepository(engine)
        # Consent, preference and registration changes with their timeline note, atomically.
        self.changes = PatientChanges(engine)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        upgrade: bool = True,
        api_key_pepper: str = "",
        patient_id_key: bytes = DEVELOPMENT_KEY,
    ) -> Store:
        engine = make_engine(url)
        if upgrade:
            migrate(engine)
        return cls(engine, api_key_pepper=api_key_pepper, patient_id_key=patient_id_key)

    def forget(self, patient_ref: str, at: datetime | None = None) -> ErasureReport:
        report = forget(self.engine, patient_ref, at)
        self.identities.forget()  # the erased link must not live on in this process
        return report

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Store"]
