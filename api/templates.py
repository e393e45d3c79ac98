"""GET /v1/templates and /v1/templates/{id}: what journeys can be started, and how they run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import require
from api.deps import Templates
from api.errors import ApiProblem
from api.openapi import problems
from contract.ids import TEMPLATE_ID
from contract.templates import TemplateDetail, TemplateStep, TemplateSummary
from domain.template_loader import UnknownTemplate
from domain.template_render import to_mermaid, to_text

# Templates describe program logic, not patients, but are not public: journeys:read.
router = APIRouter(
    prefix="/v1/templates", tags=["templates"], dependencies=[require("journeys:read")]
)


@router.get("", summary="List templates", responses=problems(500))
async def list_templates(templates: Templates) -> list[TemplateSummary]:
    out = []
    for template_id in templates.ids():
        latest = templates.get(template_id)
        out.append(
            TemplateSummary(
                id=template_id,
                latest_version=latest.version,
                versions=templates.versions_of(template_id),
                description=latest.description,
                steps=len(latest.steps),
            )
        )
    return out


@router.get(
    "/{template_id}",
    summary="One template: versions, steps, Mermaid diagram",
    responses=problems(404, 422, 500),
)
async def get_template(
    template_id: Annotated[str, Path(pattern=TEMPLATE_ID, examples=["specialty_start"])],
    templates: Templates,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> TemplateDetail:
    try:
        template = templates.get(template_id, version)
    except UnknownTemplate as err:
        raise ApiProblem(
            404, "template-not-found", "No such template", str(err), known_templates=templates.ids()
        ) from None
    return TemplateDetail(
        id=template.id,
        version=template.version,
        versions=templates.versions_of(template.id),
        description=template.description,
        parameters=template.parameters,
        steps=[
            TemplateStep(
                id=step.id,
                kind=step.kind,
                title=step.title,
                stage=step.stage,
                next=step.next,
                targets=[e.target for e in step.exits() if e.target and e.field != "next"],
            )
            for step in template.all_steps()
        ],
        text=to_text(template),
        mermaid=to_mermaid(template),
    )
