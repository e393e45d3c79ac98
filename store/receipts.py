"""A gateway's receipt applied to the contact ledger, wherever it is first seen.

The receiver applies a receipt when it arrives; the messaging activity applies one that
arrived before the gateway's answer told us the message's id (kept `unknown_message`).
Either way the same happens: the row moves (guarded, so only one of them moves it), a
carrier STOP (Twilio 21610) opts the patient out, and a landline (30006) stops texts to
that number.
"""

from __future__ import annotations

from domain.partners import PartnerEvent
from domain.receipts import settled_status
from store import Store
from store.ledger import ContactLedgerEntry
from store.timeline import TimelineEvent

# Twilio ErrorCodes (on a receipt, or on a refused send).
CARRIER_STOP = "21610"  # the recipient replied STOP at the carrier
LANDLINE = "30006"  # a landline or unreachable carrier: texts cannot reach it


def apply_receipt(
    store: Store, entry: ContactLedgerEntry, event: PartnerEvent, note: TimelineEvent | None
) -> bool:
    """True if this receipt settled the row (False: not settling, or already settled)."""
    settled = settled_status(event.type, event.data)
    if settled is None:
        return False
    error_code = event.data.get("error_code")
    moved = store.ledger.transition(entry.idempotency_key, settled, reason=error_code, note=note)
    if error_code == CARRIER_STOP:
        store.changes.opt_out(entry.patient_ref, "carrier_stop", event.event_id)
    if error_code == LANDLINE:
        patient = store.patients.get(entry.patient_ref)
        if patient is not None and patient.phone:
            store.reachability.mark(entry.patient_ref, "sms", patient.phone, "landline")
    return moved
