"""Every table of the store, in one place (Alembic's target metadata imports this module).

Tables live beside their repositories: patients, consents (+ preferences, opt-outs),
ledger, timeline, callbacks, API keys, patient identities.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from store.api_keys import ApiKey
from store.callbacks import UnmatchedCallback
from store.consents import Consent, OptOut, Preference
from store.correlations import Correlation
from store.identities import PatientIdentity
from store.ledger import ContactEvent, ContactLedgerEntry
from store.patients import Coverage, Patient, Prescriber
from store.reachability import UnreachableAddress
from store.tasks import Task, TaskEvent
from store.timeline import TimelineEntry

metadata = SQLModel.metadata

__all__ = [
    "ApiKey",
    "Consent",
    "ContactEvent",
    "ContactLedgerEntry",
    "Correlation",
    "Coverage",
    "OptOut",
    "Patient",
    "PatientIdentity",
    "Preference",
    "Prescriber",
    "Task",
    "TaskEvent",
    "TimelineEntry",
    "UnmatchedCallback",
    "UnreachableAddress",
    "metadata",
]
