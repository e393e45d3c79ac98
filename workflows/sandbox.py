"""The workflow sandbox journeys run in.

Temporal re-imports every module that is not passed through for each workflow run, so
a determinism slip in workflow code is caught. `domain/` is pure by construction
(stdlib and pydantic: models, the template schema, pure policies), so it is passed
through whole, wherever it is imported from; re-importing it for every journey only
cost CPU. `workflows/` itself stays sandboxed.
"""

from __future__ import annotations

import compileall
from pathlib import Path

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = ("domain", "pydantic", "pydantic_core", "annotated_types", "yaml", "phonenumbers")


def journey_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    )


def precompile() -> None:
    """Write bytecode for the workflow package, so its re-import for every journey loads
    cached code instead of compiling source again: where PYTHONDONTWRITEBYTECODE is set,
    nothing else writes it. Stale files are rewritten; unchanged ones are left alone."""
    compileall.compile_dir(Path(__file__).parent, quiet=2)  # a read-only install: no harm
