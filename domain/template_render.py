"""Human views of a journey template: a numbered text listing and a Mermaid flowchart.

Both read what each step kind declares (domain/steps/): `describe()` and `node_lines()`
for what a step does, `exits()` for where control goes, `children()` for nested steps.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

from domain.steps import STEP_KINDS
from domain.steps.base import StepBase
from domain.template import JourneyTemplate

# -- text --------------------------------------------------------------------------------


def to_text(template: JourneyTemplate) -> str:
    """One header, the parameters, then one numbered line per step (nested ones indented)."""
    steps = template.all_steps()
    lines = [f"{template.id} v{template.version} — {len(steps)} steps"]
    if template.description:
        lines += textwrap.wrap(" ".join(template.description.split()), 88, initial_indent="  ",
                               subsequent_indent="  ")  # fmt: skip
    if template.parameters:
        params = ", ".join(f"{k}={v}" for k, v in template.parameters.items())
        lines += textwrap.wrap(params, 88, initial_indent="params: ", subsequent_indent="  ")
    if template.events:
        lines.append("events: " + ", ".join(template.events))
    places = template.places()
    width = max(len(s.id) + 2 * _depth(places[s.id].path) for s in steps)
    kind_width = max(len(s.kind) for s in steps)
    number_width = len(str(len(steps)))

    def show(value: str | None) -> str:
        return _duration(value, template.parameters)

    for number, step in enumerate(steps, start=1):
        parts = [step.describe(show)]
        if step.next:
            parts.append(f"→ {step.next}")
        if step.stage:
            parts.append(f"[stage → {step.stage}]")
        name = "  " * _depth(places[step.id].path) + step.id
        lines.append(
            f"{number:>{number_width}}. {name:<{width}}  {step.kind:<{kind_width}}  "
            + "  ".join(p for p in parts if p)
        )
    return "\n".join(lines)


def _depth(path: str) -> int:
    return path.count("steps[") - 1


def _duration(value: str | None, parameters: dict[str, Any]) -> str:
    """`3d`, or `params.x (=3d)` so the listing shows what a parameter holds."""
    if value is None:
        return ""
    if value.startswith("params."):
        name = value.removeprefix("params.")
        if name in parameters:
            return f"{value} (={parameters[name]})"
    return value


# -- Mermaid -----------------------------------------------------------------------------

_START = "start__"


def to_mermaid(template: JourneyTemplate) -> str:
    """A `flowchart TD`: a node per step shaped by kind, an edge per way control can go;
    nested sequences are subgraphs entered from (and, at their end, leaving to) their step."""

    def value(duration: str | None) -> str:
        if duration and duration.startswith("params."):
            return str(template.parameters.get(duration.removeprefix("params."), duration))
        return duration or ""

    places = template.places()
    lines = ["flowchart TD", f"    {_START}(({_label('start')}))"]
    for step in template.all_steps():
        opening, closing = step.shape
        text = [step.node_title(), *step.node_lines(value)]
        if step.stage:
            text.append(f"stage → {step.stage}")
        lines.append(f"    {node_id(step.id)}{opening}{_label(*text)}{closing}")
    lines.append(f"    {_START} --> {node_id(template.steps[0].id)}")
    for step in template.all_steps():
        place = places[step.id]
        for label, target in _edges(step, place.following(), value):
            lines.append(f"    {node_id(step.id)}{_arrow(label)}{node_id(target)}")
        for (_, children), label in zip(step.children(), step.child_labels(), strict=True):
            lines.append(f"    {node_id(step.id)}{_arrow(label)}{node_id(children[0].id)}")
            for last in _sequence_ends(children, places):
                back = "next iteration" if step.kind == "repeat" else "branch done"
                lines.append(f"    {node_id(last)}{_arrow(back)}{node_id(step.id)}")
    for kind in sorted({k.highlight for k in STEP_KINDS.values() if k.highlight}):
        members = [node_id(s.id) for s in template.all_steps() if s.highlight == kind]
        if members:
            lines.append(f"    class {','.join(members)} {kind}")
    lines += [
        "    classDef exit fill:#eee,stroke:#555",
        "    classDef human_task fill:#fff4d6,stroke:#b58900",
        "    classDef wait_for_event fill:#e4f0fb,stroke:#268bd2",
    ]
    return "\n".join(lines)


def _edges(step: StepBase, following: str | None, value: Any) -> list[tuple[str, str]]:
    """(label, target) for every way out of a step within its own sequence."""
    out = []
    for exit_ in step.exits(value):
        target = exit_.target or following
        if target:
            out.append((exit_.label, target))
    return out


def _sequence_ends(children: list[Any], places: dict[str, Any]) -> list[str]:
    """Steps of a nested sequence whose way on falls off its end."""
    return [
        s.id
        for s in children
        if any(e.target is None for e in s.exits()) and places[s.id].following() is None
    ]


def _arrow(label: str) -> str:
    return f" -->|{_label(label)}| " if label else " --> "


def node_id(step_id: str) -> str:
    """A Mermaid-safe node id: word characters only, prefixed so no id is a keyword
    (`end`, `graph`, ...) or starts with `o`/`x` (which Mermaid reads as an arrow head)."""
    return "s_" + re.sub(r"\W", "_", step_id)


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
