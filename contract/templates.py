"""/v1/templates bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TemplateSummary(BaseModel):
    id: str
    latest_version: int
    versions: list[int]
    description: str
    steps: int = Field(description="Steps in the latest version.")


class TemplateStep(BaseModel):
    id: str
    kind: str
    title: str = ""
    stage: str | None = None
    next: str | None = None
    targets: list[str] = Field(description="Steps this one can go to (besides the next).")


class TemplateDetail(BaseModel):
    id: str
    version: int
    versions: list[int]
    description: str
    parameters: dict[str, Any]
    steps: list[TemplateStep]
    text: str = Field(description="Numbered listing of the steps.")
    mermaid: str = Field(description="Mermaid flowchart of the steps.")
