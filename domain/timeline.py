"""What a journey asks to be written to the patient's timeline (store/ persists it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class TimelineNote(BaseModel):
    """One timeline entry. `summary` carries codes and ids, never contact details."""

    idempotency_key: str = Field(description="Unique per entry; replays and retries reuse it.")
    journey_id: str
    patient_ref: str
    type: str = Field(description="e.g. journey.stage, task.opened, operator.paused.")
    occurred_at: datetime
    summary: str
    correlation: dict[str, Any] = Field(default_factory=dict)
