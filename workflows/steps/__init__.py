"""Step handlers: one module per step kind (named like the kind), each registering one
handler with `@handles(kind)`. The interpreter dispatches through `HANDLERS`."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from domain.journey import Frame
from domain.steps import STEP_KINDS

if TYPE_CHECKING:
    from workflows.interpreter import JourneyInterpreter

END = "<end>"  # a handler's target when the journey ends (never a step id)
Outcome = tuple[str | None, str]  # (target: None = the following step, outcome label)
Handler = Callable[["JourneyInterpreter", Any, "list[Frame] | None"], Awaitable[Outcome]]
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


def load_handlers() -> dict[str, Handler]:
    """Import the handler of every step kind; a kind without one fails here, at import."""
    for kind in STEP_KINDS:
        importlib.import_module(f"{__name__}.{kind}")
    missing = set(STEP_KINDS) - set(HANDLERS)
    if missing:
        raise RuntimeError(f"step kinds without a handler: {sorted(missing)}")
    return HANDLERS
