"""Step kinds: every module in this package defines one (its model); see base.py.

The discriminated union `Step` is built from what the modules define, so adding a kind
is adding a module here (and its handler in workflows/steps/): nothing else lists kinds.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, Field

from domain.steps.base import StepBase

if TYPE_CHECKING:
    Step = StepBase
else:
    Step = Any  # replaced below, once every kind is known

STEP_KINDS: dict[str, type[StepBase]] = {}


def _own_models(module: ModuleType) -> list[type[BaseModel]]:
    return [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == module.__name__
    ]


def _discover() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        modules.append(module)
        for model in _own_models(module):
            if issubclass(model, StepBase):
                (kind,) = typing.get_args(model.model_fields["kind"].annotation)
                STEP_KINDS[kind] = model
    return modules


_modules = _discover()
Step = Annotated[  # type: ignore[misc,assignment]
    Union[tuple(STEP_KINDS.values())],  # noqa: UP007
    Field(discriminator="kind"),
]
for _module in _modules:  # kinds that hold steps name `Step` as a forward reference
    _module.Step = Step  # type: ignore[attr-defined]
for _module in _modules:
    for _model in _own_models(_module):
        _model.model_rebuild(force=True, _types_namespace={"Step": Step})
