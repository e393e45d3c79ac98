"""The template reference, generated from what is declared once: the step kinds
(domain/steps/), the partner actions (domain/partner_actions.py) and the built-in event
types (domain/events.py). `starter.py templates reference` prints it; the README holds
it, and a test keeps the two the same.
"""

from __future__ import annotations

import sys

from pydantic.fields import FieldInfo

from domain.events import PEOPLE_EVENTS, partner_events
from domain.partner_actions import ACTIONS
from domain.steps import STEP_KINDS
from domain.steps.base import StepBase

_COMMON = set(StepBase.model_fields)


def _summary(doc: str | None) -> str:
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(first.split()).split(": ", 1)[-1]


def _field(name: str, info: FieldInfo) -> str:
    shown = info.alias or name
    return f"`{shown}`" if info.is_required() else f"`{shown}`?"


def step_kinds_table() -> str:
    lines = ["| kind | does | fields (`?` optional) |", "|---|---|---|"]
    for kind, model in STEP_KINDS.items():
        fields = [
            _field(name, info)
            for name, info in model.model_fields.items()
            if name not in _COMMON and name != "kind"
        ]
        does = _summary(sys.modules[model.__module__].__doc__)
        lines.append(f"| `{kind}` | {does} | {', '.join(fields)} |")
    return "\n".join(lines)


def partner_actions_table() -> str:
    lines = [
        "| action | does | inputs (`?` optional) | result `steps.<id>.…` | answered by |",
        "|---|---|---|---|---|",
    ]
    for spec in ACTIONS.values():
        inputs = ", ".join(
            f"`{name}`" + ("" if required else "?") for name, required in spec.inputs().items()
        )
        result = ", ".join(f"`{name}`" for name in spec.result.model_fields)
        events = ", ".join(f"`{e}`" for e in spec.events) or "—"
        lines.append(f"| `{spec.name}` | {spec.description} | {inputs} | {result} | {events} |")
    return "\n".join(lines)


def event_types_table() -> str:
    lines = ["| event type | from |", "|---|---|"]
    for event_type, partner in partner_events().items():
        lines.append(f"| `{event_type}` | {partner} callback |")
    for event_type, meaning in PEOPLE_EVENTS.items():
        lines.append(f"| `{event_type}` | {meaning} |")
    return "\n".join(lines)


def reference() -> str:
    return "\n\n".join(
        [
            "### Step kinds",
            step_kinds_table(),
            "### Partner actions",
            partner_actions_table(),
            "### Built-in event types",
            event_types_table(),
        ]
    )
