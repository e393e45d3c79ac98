"""Human views of a journey template: a numbered text listing and a Mermaid flowchart."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from domain.template import (
    BranchStep,
    DelayStep,
    ExitStep,
    HumanTaskStep,
    JourneyTemplate,
    MessageStep,
    PartnerActionStep,
    Step,
    WaitForEventStep,
)

_TEXT_SNIPPET = 48


# -- text --------------------------------------------------------------------------------


def to_text(template: JourneyTemplate) -> str:
    """One header, the parameters, then one numbered line per step."""
    lines = [f"{template.id} v{template.version} — {len(template.steps)} steps"]
    if template.description:
        lines += textwrap.wrap(" ".join(template.description.split()), 88, initial_indent="  ",
                               subsequent_indent="  ")  # fmt: skip
    if template.parameters:
        params = ", ".join(f"{k}={v}" for k, v in template.parameters.items())
        lines += textwrap.wrap(params, 88, initial_indent="params: ", subsequent_indent="  ")
    width = max(len(s.id) for s in template.steps)
    kind_width = max(len(s.kind) for s in template.steps)
    number_width = len(str(len(template.steps)))
    for number, step in enumerate(template.steps, start=1):
        parts = [_essentials(step, template)]
        if step.next:
            parts.append(f"→ {step.next}")
        if step.stage:
            parts.append(f"[stage → {step.stage}]")
        lines.append(
            f"{number:>{number_width}}. {step.id:<{width}}  {step.kind:<{kind_width}}  "
            + "  ".join(p for p in parts if p)
        )
    return "\n".join(lines)


def _essentials(step: Step, template: JourneyTemplate) -> str:
    def dur(value: str | None) -> str:
        return _duration(value, template.parameters)

    match step:
        case PartnerActionStep():
            out = step.action
            inputs = getattr(step, "inputs", None)  # newer schema: extra request fields
            if inputs:
                out += " (" + ", ".join(f"{k}={v}" for k, v in inputs.items()) + ")"
            if step.on_error:
                out += "; on error " + ", ".join(f"{e} → {t}" for e, t in step.on_error.items())
            return out
        case MessageStep():
            out = f"{step.channel} {step.purpose}/{step.message_class}"
            if step.subject:
                out += f" {_snippet(step.subject)!r}"
            return f"{out}: {_snippet(step.text)!r}"
        case WaitForEventStep():
            return (
                f"wait for {' | '.join(step.event_types())} matching {step.correlation}; "
                f"timeout {dur(step.timeout)} → {step.on_timeout}"
            )
        case DelayStep():
            out = f"for {dur(step.duration)}" if step.duration else f"until {step.until}"
            if step.at_local_time:
                out += f", then {step.at_local_time} local time"
            return out
        case BranchStep():
            cases = [f"if {c.when} → {c.goto}" for c in step.cases]
            return "; ".join([*cases, f"else → {step.default}"])
        case HumanTaskStep():
            out = f"task for {step.role}"
            if step.title:
                out += f" {step.title!r}"
            out += f"; SLA {dur(step.sla)}, escalate to {step.escalate_to}"
            if step.give_up_after:
                out += f"; give up after {dur(step.give_up_after)} → {step.on_timeout}"
            return out
        case ExitStep():
            return step.outcome + (f" ({step.reason})" if step.reason else "")
    return ""


def _duration(value: str | None, parameters: dict[str, Any]) -> str:
    """`3d`, or `params.x (=3d)` so the listing shows what a parameter holds."""
    if value is None:
        return ""
    if value.startswith("params."):
        name = value.removeprefix("params.")
        if name in parameters:
            return f"{value} (={parameters[name]})"
    return value


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_SNIPPET else text[: _TEXT_SNIPPET - 1] + "…"


# -- Mermaid -----------------------------------------------------------------------------

_SHAPES = {  # kind → (open, close)
    "partner_action": ("[", "]"),
    "message": ("[/", "/]"),
    "wait_for_event": ("{{", "}}"),
    "delay": ("(", ")"),
    "branch": ("{", "}"),
    "human_task": ("[[", "]]"),
    "exit": ("([", "])"),
}


def to_mermaid(template: JourneyTemplate) -> str:
    """A `flowchart TD`: a node per step shaped by kind, an edge per way control can go."""
    ids = {step.id: node_id(step.id) for step in template.steps}
    lines = ["flowchart TD", f"    {_START}(({_label('start')}))"]
    for step in template.steps:
        opening, closing = _SHAPES[step.kind]
        lines.append(f"    {ids[step.id]}{opening}{_label(*_node_text(step, template))}{closing}")
    lines.append(f"    {_START} --> {ids[template.steps[0].id]}")
    for step in template.steps:
        for label, target in _edges(step, template):
            arrow = f" -->|{_label(label)}| " if label else " --> "
            lines.append(f"    {ids[step.id]}{arrow}{ids[target]}")
    for kind in ("exit", "human_task", "wait_for_event"):
        members = [ids[s.id] for s in template.steps if s.kind == kind]
        if members:
            lines.append(f"    class {','.join(members)} {kind}")
    lines += [
        "    classDef exit fill:#eee,stroke:#555",
        "    classDef human_task fill:#fff4d6,stroke:#b58900",
        "    classDef wait_for_event fill:#e4f0fb,stroke:#268bd2",
    ]
    return "\n".join(lines)


_START = "start__"


def node_id(step_id: str) -> str:
    """A Mermaid-safe node id: word characters only, prefixed so no id is a keyword
    (`end`, `graph`, ...) or starts with `o`/`x` (which Mermaid reads as an arrow head)."""
    return "s_" + re.sub(r"\W", "_", step_id)


def _value(duration: str | None, template: JourneyTemplate) -> str:
    """A duration as written, or the parameter value it names."""
    if duration and duration.startswith("params."):
        return str(template.parameters.get(duration.removeprefix("params."), duration))
    return duration or ""


def _node_text(step: Step, template: JourneyTemplate) -> list[str]:
    lines = [step.id]
    match step:
        case PartnerActionStep():
            lines.append(step.action)
        case MessageStep():
            lines.append(f"{step.channel} · {step.purpose}")
        case WaitForEventStep():
            lines.append("wait: " + " | ".join(step.event_types()))
        case DelayStep():
            duration = _value(step.duration, template)
            lines.append(f"delay {duration}" if step.duration else f"until {step.until}")
            if step.at_local_time:
                lines.append(f"then {step.at_local_time} local")
        case BranchStep():
            lines[0] += "?"
        case HumanTaskStep():
            lines.append(f"task: {step.role}, SLA {_value(step.sla, template)}")
        case ExitStep():
            lines.append(step.outcome + (f": {step.reason}" if step.reason else ""))
    if step.stage:
        lines.append(f"stage → {step.stage}")
    return lines


def _edges(step: Step, template: JourneyTemplate) -> list[tuple[str, str]]:
    """(label, target step id) for every way out of a step, in a stable order."""
    onward = step.next
    if onward is None and not isinstance(step, ExitStep | BranchStep):
        onward = template.following(step.id)
    edges: list[tuple[str, str]] = []
    match step:
        case PartnerActionStep():
            if onward:
                edges.append(("ok" if step.on_error else "", onward))
            for error, target in step.on_error.items():
                edges.append(("any error" if error == "*" else f"error: {error}", target))
        case WaitForEventStep():
            if onward:
                edges.append((" | ".join(step.event_types()), onward))
            edges.append((f"timeout {_value(step.timeout, template)}", step.on_timeout))
        case BranchStep():
            edges += [(case.when, case.goto) for case in step.cases]
            edges.append(("else", step.default))
        case HumanTaskStep():
            if onward:
                edges.append(("done" if step.on_timeout else "", onward))
            if step.on_timeout:
                gave_up = _value(step.give_up_after, template)
                edges.append((f"timeout: gave up after {gave_up}", step.on_timeout))
        case _:
            if onward:
                edges.append(("", onward))
    return edges


_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "|": "#124;"}


def _label(*lines: str) -> str:
    """A quoted Mermaid label; characters Mermaid would parse are written as entity codes
    (`#` first, so the codes it adds stay intact), lines joined with <br/>."""

    def escape(text: str) -> str:
        text = text.replace("#", "#35;")
        for char, code in _ESCAPES.items():
            text = text.replace(char, code)
        return text

    return '"' + "<br/>".join(escape(line) for line in lines) + '"'
