"""What the services refuse with; api/errors.py turns each into a problem answer. None
of them names a value the caller sent (it may be patient data)."""

from __future__ import annotations


class PatientNotFound(LookupError):
    """No patient with that id."""


class InvalidField(ValueError):
    """A request value is wrong: names the field and what is wrong, never the value."""

    def __init__(self, field: str, message: str, kind: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.kind = field, message, kind


class NoContactAddress(Exception):
    """A consent names no address, and none is on file for its channel."""


class JourneyRunsAnotherTemplate(Exception):
    """The patient's journey for that key exists and runs a different template."""

    def __init__(self, journey_id: str, template_id: str) -> None:
        super().__init__(f"journey runs {template_id}; use a business_key for a second journey")
        self.journey_id = journey_id
