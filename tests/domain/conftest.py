"""Helpers for template tests: a small valid template to break in one place at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

MINI = """\
id: mini
version: 1
parameters:
  wait: 3d
  drug_code: "99999-0001-01"
steps:
  - id: pa_submit
    kind: partner_action
    action: payer.submit_prior_auth
  - id: pa_decision
    kind: wait_for_event
    event: pa.decided
    correlation: steps.pa_submit.pa_number
    timeout: params.wait
    on_timeout: followup
  - id: decided
    kind: branch
    cases:
      - when: events.pa_decision.outcome == 'approved'
        goto: welcome
    default: followup
  - id: welcome
    kind: message
    content: on_therapy@1
    channels: [sms, email]
    next: done
  - id: followup
    kind: human_task
    role: case_manager
    sla: 2d
    escalate_to: program_lead
  - id: done
    kind: exit
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(text, name='t.yaml') -> the path of a new file under tmp_path."""

    def _write(text: str, name: str = "t.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def mutate(old: str, new: str, text: str = MINI) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the template"
    return text.replace(old, new)
