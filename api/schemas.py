"""Request and response bodies of the journey and template API.

The models are defined in `client/models.py` (the wire contract the HTTP client shares;
nothing may import api/); this module is where the API takes them from.
"""

from __future__ import annotations

from client.models import (
    JOURNEY_ID,
    KNOWN_EVENT_TYPES,
    PAGE_TOKEN,
    STAGE,
    TEMPLATE_ID,
    Control,
    FieldProblem,
    JourneyEvent,
    JourneyEventType,
    JourneyFilter,
    JourneyPage,
    JourneySummary,
    PreferencesIn,
    Problem,
    QuietHoursIn,
    StartJourney,
    TemplateDetail,
    TemplateStep,
    TemplateSummary,
)
from domain.journey import PSEUDONYM, EventAck, JourneyState, StartAck

__all__ = [
    "JOURNEY_ID",
    "KNOWN_EVENT_TYPES",
    "PAGE_TOKEN",
    "PSEUDONYM",
    "STAGE",
    "TEMPLATE_ID",
    "Control",
    "EventAck",
    "FieldProblem",
    "JourneyEvent",
    "JourneyEventType",
    "JourneyFilter",
    "JourneyPage",
    "JourneyState",
    "JourneySummary",
    "PreferencesIn",
    "Problem",
    "QuietHoursIn",
    "StartAck",
    "StartJourney",
    "TemplateDetail",
    "TemplateStep",
    "TemplateSummary",
]
