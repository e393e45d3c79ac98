"""The whole stack (sandbox, receiver, worker, store) against the time-skipping dev
server, for the fidelity test: its journeys are started with the test's client, so
each gets its own virtual clock that the driver moves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.e2e.conftest import Stack, open_stack, stack_env_in


@pytest.fixture(scope="module")
async def fidelity_stack(
    skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    with stack_env_in(tmp_path_factory.mktemp("fidelity")) as stack_env:
        async with open_stack(skipping_env, stack_env) as stack:
            yield stack
