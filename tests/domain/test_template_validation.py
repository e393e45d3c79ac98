"""What template validation catches before a journey runs: the mistakes a new template
author makes that used to fail only at run time."""

from __future__ import annotations

import pytest

from domain.template_loader import TemplateError, load_template, unreachable_steps
from domain.template_render import to_mermaid, to_text
from tests.domain.conftest import MINI, mutate


def problems(write, text: str) -> list[str]:
    with pytest.raises(TemplateError) as caught:
        load_template(write(text))
    return caught.value.lines


def test_a_misspelled_event_type_fails_with_did_you_mean(write) -> None:
    lines = problems(write, mutate("event: pa.decided", "event: pa.decidd"))
    assert any(
        "step 'pa_decision' (steps[1]) field 'event': event type 'pa.decidd' is not declared; "
        "did you mean 'pa.decided'?" in ln
        for ln in lines
    ), lines


def test_a_program_event_must_be_declared_by_the_template(write) -> None:
    text = mutate("event: pa.decided", "event: patient.first_dose_confirmd")
    assert any("did you mean" not in ln and "not declared" in ln for ln in problems(write, text))
    misspelled = mutate("event: pa.decided", "event: patient.first_dose_confirmd")
    declaration = "version: 1\nevents:\n  patient.first_dose_confirmed: x\n"
    declared = mutate("version: 1\n", declaration, misspelled)
    lines = problems(write, declared)
    assert any("did you mean 'patient.first_dose_confirmed'?" in ln for ln in lines), lines
    fixed = declared.replace("confirmd", "confirmed")
    assert load_template(write(fixed)).events == {"patient.first_dose_confirmed": "x"}


def test_declaring_a_built_in_event_type_is_refused(write) -> None:
    text = mutate("version: 1\n", "version: 1\nevents:\n  pa.decided: mine\n")
    assert any("'pa.decided' is built in" in ln for ln in problems(write, text))


def test_reading_a_result_field_the_action_never_returns_fails(write) -> None:
    text = mutate("correlation: steps.pa_submit.pa_number", "correlation: steps.pa_submit.task_id")
    lines = problems(write, text)
    assert any(
        "field 'correlation': 'steps.pa_submit.task_id' reads steps.pa_submit.task_id, which "
        "step 'pa_submit' never returns"
        in ln
        and "'pa_number'" in ln
        for ln in lines
    ), lines


def test_reading_steps_of_a_step_without_a_result_or_of_no_step_fails(write) -> None:
    lines = problems(write, mutate("steps.pa_submit.pa_number", "steps.followup.task_id"))
    assert any("a human_task step puts nothing under steps" in ln for ln in lines), lines
    lines = problems(write, mutate("steps.pa_submit.pa_number", "steps.pa_submt.pa_number"))
    assert any("no step 'pa_submt'; did you mean 'pa_submit'?" in ln for ln in lines), lines


def test_partner_inputs_are_checked_against_the_action(write) -> None:
    unknown = mutate(
        "action: payer.submit_prior_auth",
        "action: payer.submit_prior_auth\n    inputs: {drug_kode: params.drug_code}",
    )
    lines = problems(write, unknown)
    assert any("field 'inputs.drug_kode': payer.submit_prior_auth: 'drug_kode' is not" in ln
               for ln in lines), lines  # fmt: skip
    missing = mutate('  drug_code: "99999-0001-01"\n', "")
    lines = problems(write, missing)
    assert any("step 'pa_submit' (steps[0]) field 'inputs': payer.submit_prior_auth needs "
               "input 'drug_code'" in ln for ln in lines), lines  # fmt: skip
    assert all(" (line " in ln for ln in lines)


def test_an_unknown_action_lists_the_registered_ones(write) -> None:
    lines = problems(write, mutate("action: payer.submit_prior_auth", "action: payer.bribe"))
    assert any("unknown partner action 'payer.bribe'" in ln and "copay.enroll" in ln
               for ln in lines)  # fmt: skip


NESTED = """\
id: nested
version: 1
parameters: {drug_code: "99999-0001-01", days_supply: 28, n: 3}
steps:
  - id: both
    kind: parallel
    branches:
      - id: pa
        steps:
          - id: pa_submit
            kind: partner_action
            action: payer.submit_prior_auth
      - id: bridge
        steps:
          - id: bridge_supply
            kind: partner_action
            action: pharmacy.refer
  - id: cycles
    kind: repeat
    max: params.n
    steps:
      - id: wait_a_day
        kind: delay
        duration: 1d
      - id: remind
        kind: message
        content: refill_reminder@1
        purpose: adherence
        channels: [sms]
        values:
          days_until: "3"
          drug_name: "'Zorvexa'"
  - id: done
    kind: exit
"""


def test_nested_steps_validate_render_and_are_all_reachable(write) -> None:
    template = load_template(write(NESTED))
    assert [s.id for s in template.all_steps()] == [
        "both", "pa_submit", "bridge_supply", "cycles", "wait_a_day", "remind", "done",
    ]  # fmt: skip
    assert unreachable_steps(template) == []
    text = to_text(template)
    assert "  pa_submit" in text and "2 branches (pa, bridge), join all" in text
    chart = to_mermaid(template)
    assert 's_both -->|"pa"| s_pa_submit' in chart
    assert 's_pa_submit -->|"branch done"| s_both' in chart
    assert 's_remind -->|"next iteration"| s_cycles' in chart
    assert 's_cycles -->|"done"| s_done' in chart


def test_control_stays_within_its_sequence(write) -> None:
    text = NESTED.replace("        duration: 1d\n", "        duration: 1d\n        next: done\n")
    lines = problems(write, text)
    assert any(
        "step 'wait_a_day' (steps[1].steps[0]) field 'next': goes to step 'done', which is in "
        "another sequence"
        in ln
        and "(line 25)" in ln
        for ln in lines
    ), lines


def test_nested_field_errors_name_the_nested_step_and_line(write) -> None:
    lines = problems(write, NESTED.replace("duration: 1d", "duration: soon"))
    assert lines == [
        f"{lines[0].split(': ')[0]}: step 'wait_a_day' (steps[1].steps[0]) field 'duration': "
        "invalid duration 'soon' (use e.g. 30m, 72h, 3d, P3D or params.NAME) (line 24)"
    ]
    lines = problems(write, NESTED.replace("action: pharmacy.refer", "action: pharmacy.reefer"))
    assert "step 'bridge_supply' (steps[0].branches[1].steps[0]) field 'action'" in lines[0]


def test_a_loop_must_be_bounded_by_a_whole_number(write) -> None:
    many = problems(write, NESTED.replace("n: 3", "n: many"))
    assert any("parameter 'n' is 'many'" in ln for ln in many)
    forever = problems(write, NESTED.replace("max: params.n", "max: forever"))
    assert any("max must be a whole number" in ln for ln in forever)
    unbounded = problems(write, NESTED.replace("    max: params.n\n", ""))
    assert any("'max'" in ln and "required" in ln for ln in unbounded)


def test_a_parallel_step_needs_two_branches(write) -> None:
    one = NESTED[: NESTED.index("      - id: bridge")] + NESTED[NESTED.index("  - id: cycles") :]
    assert any("field 'branches'" in ln for ln in problems(write, one))


def test_mini_still_loads(write) -> None:
    assert load_template(write(MINI)).id == "mini"
