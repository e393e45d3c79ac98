"""A template's message steps against the approved content catalog.

Run when a template is loaded from disk (not when a workflow reads its snapshot: the
catalog lives in files, and workflow code reads none). Each message step must name
content that exists, with the same purpose and class, offered on every channel the step
allows (a human task needs no wording), with a value for every placeholder, and clean
against the program's own product names, the drug dictionary and diagnosis terms.
"""

from __future__ import annotations

from domain.content import ContentCatalog, ContentRef, UnknownContent
from domain.steps.message import MessageStep
from domain.template import JourneyTemplate

# Values every message gets without the step naming them.
GIVEN = frozenset({"program_name", "help_contact", "first_name"})


def content_problems(template: JourneyTemplate, catalog: ContentCatalog) -> list[str]:
    """One line per problem, naming the step like the template's own validation."""
    problems: list[str] = []
    for step_id, place in template.places().items():
        step = place.step
        if not isinstance(step, MessageStep):
            continue
        where = f"step {step_id!r} ({place.path})"
        if step.content is None:
            problems.append(
                f"{where} field 'text': inline message text is retired; name approved "
                "content (`content: id@version`, templates/messages/) and `channels`"
            )
            continue
        problems += [
            f"{where} field 'content': {p}" for p in _step_problems(step, template, catalog)
        ]
    return problems


def _step_problems(
    step: MessageStep, template: JourneyTemplate, catalog: ContentCatalog
) -> list[str]:
    assert step.content is not None
    ref = ContentRef.parse(step.content)
    try:
        catalog.get(ref)
        content = catalog.content(ref.id)
    except UnknownContent as unknown:
        return [str(unknown)]
    found = []
    if (content.purpose, content.message_class) != (step.purpose, step.message_class):
        found.append(
            f"{ref} is approved as {content.purpose}/{content.message_class}, "
            f"the step says {step.purpose}/{step.message_class}"
        )
    missing = [c for c in step.channels if c != "task" and c not in catalog.channels(ref)]
    if missing:
        found.append(f"{ref} has no wording for channel(s) {missing}")
    unfilled = sorted(catalog.placeholders(ref) - GIVEN - set(step.values))
    if unfilled:
        found.append(f"{ref} needs value(s) {unfilled}; give them under `values`")
    found += catalog.check_for(ref, template.products)
    return found
