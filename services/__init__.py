"""Business operations behind the HTTP routes: one service per job, no HTTP in here.

- `callbacks`: partner callbacks → the journey that waits for them, the patient's
  timeline, the contact ledger, or the review queue.
- `patients`: a caller's patient id → Pitwall's pseudonym; registration; profiles.
- `journeys`: opening a case (intake + start) through the gateway.
"""
