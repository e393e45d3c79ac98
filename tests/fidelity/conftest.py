"""The whole stack (sandbox, receiver, worker, store) against the time-skipping dev
server, for the fidelity test: its journeys are started with the test's client, so
each gets its own virtual clock that the driver moves."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import nullcontext

import pytest
from temporalio.testing import WorkflowEnvironment

from store.testing import throwaway_schema
from tests.e2e.conftest import Stack, _stack_env, open_stack


@pytest.fixture(scope="module")
async def fidelity_stack(
    skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data = tmp_path_factory.mktemp("fidelity")
    pg = os.environ.get("PITWALL_TEST_DATABASE_URL", "")
    with (
        throwaway_schema(pg) if pg.startswith("postgres")
        else nullcontext(f"sqlite:///{data / 'pitwall.db'}")
    ) as database_url:  # fmt: skip
        async with open_stack(skipping_env, _stack_env(data, database_url)) as stack:
            yield stack
