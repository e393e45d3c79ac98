"""The templates this process starts journeys on."""

from __future__ import annotations

from collections.abc import Mapping

from domain.events import declared_event_types
from domain.template import JourneyTemplate
from domain.template_loader import UnknownTemplate, load_template_versions


class TemplateCatalog:
    """The templates this process starts journeys on, read once (at app start)."""

    def __init__(self, versions: Mapping[tuple[str, int], JourneyTemplate]) -> None:
        self.versions = dict(sorted(versions.items()))
        # Built-in event types plus every program event a known template declares.
        self.event_types = frozenset(
            declared_event_types(e for t in self.versions.values() for e in t.events)
        )

    @classmethod
    def load(cls, directory: str | None = None) -> TemplateCatalog:
        return cls(load_template_versions(directory))

    def ids(self) -> list[str]:
        return sorted({template_id for template_id, _ in self.versions})

    def versions_of(self, template_id: str) -> list[int]:
        return [v for (i, v) in self.versions if i == template_id]

    def get(self, template_id: str, version: int | None = None) -> JourneyTemplate:
        """The template (latest version unless given); UnknownTemplate lists known ids."""
        versions = self.versions_of(template_id)
        wanted = version if version is not None else (max(versions) if versions else None)
        if wanted is None or (template_id, wanted) not in self.versions:
            raise UnknownTemplate(template_id, self.versions, version)
        return self.versions[(template_id, wanted)]
