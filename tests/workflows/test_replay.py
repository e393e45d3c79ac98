"""Golden histories: journeys recorded with earlier workflow code must replay unchanged.

A change to workflow or interpreter code that breaks one of these would break running
journeys: guard it with `workflow.patched(...)` instead. Record new goldens after a
workflow change with `PITWALL_RECORD_HISTORIES=r10 .venv/bin/pytest tests/workflows`
(test_journey.py, test_long_journeys.py, test_templates.py and test_refill_journey.py
record them; r10 is the next revision name; keep the old files: they stand for journeys
still running on the old code).
r1: before the timeline; r2: with the timeline writer (patch timeline-v1); r3: a journey
that continues as new (patch continue-as-new-v1): its first run, ending in the switch,
and its second run, starting from the memory the first handed over. r4: recorded with
the code before starts became one StartWorkflowExecution: update-with-start (`attach`)
and the retired `set_preferences` update, which must stay as a handler for them. r5:
started by one StartWorkflowExecution (no `attach`); its messages are the first
generation (one channel, `messaging.send`). r6: messages through the contact policy
(patch contact-policy-v1: `messaging.contact`, a wait for the receipt while channels
are left to fall back to). r7: specialty_start v2 (tasks in the queue, task-queue-v1;
a pause indexed ON_HOLD, on-hold-stage-v1; a cancelled journey's open task cancelled,
task-cancel-v1), and v1 again on the same code. r8: refill_adherence (a refill_watch
step: dispenses, reminders, AT_RISK and back, discontinued; risk and PDC indexed). r9:
refill_adherence again, its next moves compared by when they were planned for
(refill-due-ties-v1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.journey import TherapyJourney
from workflows.sandbox import journey_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
GOLDEN = {path.stem: path.read_text() for path in HISTORIES}


def test_golden_histories_exist() -> None:
    assert len(HISTORIES) >= 25


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_with_current_code(path: Path) -> None:
    replayer = Replayer(
        workflows=[TherapyJourney],
        workflow_runner=journey_runner(),
        data_converter=pydantic_data_converter,
    )
    history = WorkflowHistory.from_json(path.stem, GOLDEN[path.stem])
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
