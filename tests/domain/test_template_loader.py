from __future__ import annotations

from pathlib import Path

import pytest

from domain.steps.exit import ExitStep
from domain.steps.wait_for_event import WaitForEventStep
from domain.template_loader import (
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    UnknownTemplate,
    get_template,
    load_template,
    load_template_versions,
    load_templates,
    unreachable_steps,
)
from tests.domain.conftest import MINI, mutate

REAL = DEFAULT_TEMPLATES_DIR / "specialty_start.yaml"


def test_real_template_loads_and_its_graph_is_closed() -> None:
    template = load_template(REAL)
    ids = [s.id for s in template.steps]
    assert template.id == "specialty_start"
    assert len(ids) == len(set(ids))
    for step in template.steps:
        assert {e.target for e in step.exits() if e.target} <= set(ids), step.id
        if isinstance(step, WaitForEventStep):
            assert step.on_timeout in ids
    assert unreachable_steps(template) == []
    assert isinstance(template.steps[-1], ExitStep)
    assert template.step("pa_decision").kind == "wait_for_event"


def test_default_directory_is_the_repo_templates_dir() -> None:
    assert Path(__file__).resolve().parents[2] / "templates" == DEFAULT_TEMPLATES_DIR
    assert "specialty_start" in load_templates()


def test_env_var_overrides_directory(write, tmp_path, monkeypatch) -> None:
    write(MINI)
    monkeypatch.setenv("PITWALL_TEMPLATES_DIR", str(tmp_path))
    assert list(load_templates()) == ["mini"]
    assert get_template("mini").id == "mini"


def test_mini_template_is_valid(write) -> None:
    template = load_template(write(MINI))
    assert [s.id for s in template.steps][-1] == "done"
    assert unreachable_steps(template) == []


# (case, old, new, step id, field, words the message must hold)
BAD = [
    ("bad duration", "sla: 2d", "sla: soon", "followup", "sla", "invalid duration 'soon'"),
    ("unknown goto", "goto: welcome", "goto: nowhere", "decided", "cases[0].goto",
     "unknown step 'nowhere'"),
    ("duplicate id", "id: decided", "id: pa_decision", "pa_decision", "id", "duplicate step id"),
    ("unknown kind", "kind: human_task", "kind: chore", "followup", "kind",
     "unknown step kind 'chore'"),
    ("unknown action", "action: payer.submit_prior_auth", "action: payer.bribe", "pa_submit",
     "action", "'payer.bribe'"),
    ("dunder import", "when: events.pa_decision.outcome == 'approved'",
     "when: \"__import__('os')\"", "decided", "cases[0].when", "'__import__' is not allowed"),
    ("dunder attribute", "when: events.pa_decision.outcome == 'approved'",
     "when: events.__class__", "decided", "cases[0].when", "'__class__' is not allowed"),
    ("lambda", "when: events.pa_decision.outcome == 'approved'", "when: 'lambda: 1'",
     "decided", "cases[0].when", "Lambda is not allowed"),
    ("unknown root", "when: events.pa_decision.outcome == 'approved'",
     "when: patient.name == 'x'", "decided", "cases[0].when", "unknown name(s) ['patient']"),
    ("unknown content", "content: on_therapy@1", "content: on_therapy@9",
     "welcome", "content", "on_therapy@9"),
    ("content of another class", "content: on_therapy@1",
     "content: on_therapy@1\n    message_class: promotional", "welcome", "content",
     "approved as treatment/operational"),
    ("channel without wording", "channels: [sms, email]", "channels: [sms, voice]",
     "welcome", "content", "no wording for channel(s) ['voice']"),
    ("inline text is retired", "content: on_therapy@1\n    channels: [sms, email]",
     'channel: sms\n    text: "Welcome to {program_name}."', "welcome", "text",
     "inline message text is retired"),
    ("undefined param", "timeout: params.wait", "timeout: params.nope", "pa_decision", "timeout",
     "undefined parameter 'nope'"),
    ("param not a duration", "  wait: 3d", "  wait: 28", "pa_decision", "timeout",
     "not a duration"),
    ("missing on_timeout", "    on_timeout: followup\n", "", "pa_decision", "on_timeout",
     "required field is missing"),
    ("unknown field", "    escalate_to: program_lead\n",
     "    escalate_to: program_lead\n    escalate_too: x\n", "followup", "escalate_too",
     "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "step_id", "field", "words"),
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])  # fmt: skip
def test_bad_template_names_file_step_and_field(write, old, new, step_id, field, words) -> None:
    path = write(mutate(old, new), name="broken.yaml")
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    wanted = f"{path}: step {step_id!r} (steps["
    matching = [ln for ln in lines if ln.startswith(wanted) and f" field {field!r}: " in ln]
    assert matching, lines
    assert any(words in ln for ln in matching), matching
    assert all(" (line " in ln for ln in matching), matching  # points into the file too
    assert caught.value.lines == lines


def test_error_line_points_at_the_yaml_line(write) -> None:
    path = write(mutate("sla: 2d", "sla: soon"))
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    line_no = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if "soon" in ln)
    assert str(caught.value).endswith(f"(line {line_no})")


def test_every_problem_is_reported_not_just_the_first(write) -> None:
    text = mutate("sla: 2d", "sla: soon", mutate("action: payer.submit_prior_auth", "action: x"))
    with pytest.raises(TemplateError) as caught:
        load_template(write(text))
    assert len(caught.value.lines) == 2


def test_every_graph_problem_is_reported(write) -> None:
    text = mutate("goto: welcome", "goto: nowhere", mutate("next: done", "next: gone"))
    with pytest.raises(TemplateError) as caught:
        load_template(write(text))
    message = str(caught.value)
    assert "field 'cases[0].goto': goes to unknown step 'nowhere'" in message
    assert "step 'welcome' (steps[3]) field 'next': goes to unknown step 'gone'" in message


def test_a_program_product_name_in_a_text_fails_the_template(write, tmp_path) -> None:
    """A product the dictionary does not know (here one named like a word of the text)
    fails the template that names it among its products."""
    clean = load_template(write(mutate("version: 1", "version: 1\nproducts: [Zorvexa]")))
    assert clean.products == ["Zorvexa"]
    with pytest.raises(TemplateError, match=r"step 'welcome' .*field 'content'.*on_therapy"):
        load_template(write(mutate("version: 1", "version: 1\nproducts: [Checking]")))


def test_malformed_yaml_names_file_and_line(write) -> None:
    path = write("id: x\nsteps:\n  - id: a\n   kind: exit\n")
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert str(caught.value).startswith(f"{path}: line 4, column 4: invalid YAML")


def test_duplicate_yaml_key_is_an_error(write) -> None:
    path = write(mutate("    next: done\n", "    next: done\n    next: followup\n"))
    with pytest.raises(TemplateError, match=r"line \d+, .*duplicate key 'next'"):
        load_template(path)


def test_file_that_is_not_a_mapping(write) -> None:
    with pytest.raises(TemplateError, match="must hold a mapping"):
        load_template(write("- just\n- a list\n"))


def test_unknown_template_lists_known_ids(write, tmp_path) -> None:
    write(MINI)
    with pytest.raises(UnknownTemplate) as caught:
        get_template("nope", tmp_path)
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "unknown template 'nope'; known: mini"
    with pytest.raises(UnknownTemplate, match="no version 7; known versions: 1"):
        get_template("mini", tmp_path, version=7)


def test_two_versions_load_and_latest_wins(write, tmp_path) -> None:
    write(MINI, "mini_v1.yaml")
    write(mutate("version: 1", "version: 2", mutate("sla: 2d", "sla: 5d")), "mini_v2.yaml")
    assert set(load_template_versions(tmp_path)) == {("mini", 1), ("mini", 2)}
    assert load_templates(tmp_path)["mini"].version == 2
    assert get_template("mini", tmp_path).version == 2
    assert get_template("mini", tmp_path, version=1).step("followup").sla == "2d"  # type: ignore[attr-defined]


def test_same_id_and_version_in_two_files_is_an_error(write, tmp_path) -> None:
    first, second = write(MINI, "a.yaml"), write(MINI, "b.yaml")
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    assert str(caught.value) == (f"{second}: template 'mini' version 1 is also defined in {first}")


def test_directory_problems_are_collected_from_every_file(write, tmp_path) -> None:
    write(MINI, "good.yaml")
    write(mutate("sla: 2d", "sla: soon"), "bad1.yaml")
    write("id: [", "bad2.yaml")
    with pytest.raises(TemplateError) as caught:
        load_template_versions(tmp_path)
    assert [ln.split(":")[0] for ln in caught.value.lines] == [
        str(tmp_path / "bad1.yaml"),
        str(tmp_path / "bad2.yaml"),
    ]


def test_missing_directory(tmp_path) -> None:
    with pytest.raises(TemplateError, match="templates directory not found"):
        load_templates(tmp_path / "nope")


def test_unreachable_step_is_found(write) -> None:
    text = mutate("    default: followup\n", "    default: done\n",
                  mutate("    on_timeout: followup\n", "    on_timeout: done\n"))  # fmt: skip
    assert unreachable_steps(load_template(write(text))) == ["followup"]
