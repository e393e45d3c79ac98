"""Error bodies: RFC 9457 problem details."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    field: str = Field(description="Where: body.patient_id, query.stage, ...")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; `type` is stable, `detail` never holds patient data."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://pitwall.dev/problems/journey-not-found"])
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    known_templates: list[str] | None = None
    journey_id: str | None = None
    error_id: str | None = None
