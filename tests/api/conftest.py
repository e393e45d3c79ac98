"""The API against the real dev server and a real worker with scripted partners.

One dev server and one worker for the whole package; each test uses fresh patient ids.
The app runs in-process (httpx over ASGI, lifespan included); `served` also runs it
under uvicorn on a free loopback port for clients that need a real socket. `running`
makes an admin API key and sends it on every request of its client; tests of
authentication use `ApiStack.key(...)` for narrower keys, or no key at all.

The store is SQLite in the test's temporary directory, or a throwaway schema of the
Postgres that PITWALL_TEST_DATABASE_URL / DATABASE_URL names.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from domain.template_loader import load_templates
from gateway.journeys import JourneyGateway
from settings import Settings, StackSettings, TemporalSettings
from store import Store
from store.testing import postgres_test_url, throwaway_schema
from tests.workflows.fakes import ScriptedPartners
from workflows.journey import TherapyJourney
from workflows.sandbox import journey_runner

PROGRAM = "api-program"
TEMPLATE = "specialty_start"
KNOWN_TEMPLATES = sorted(load_templates())  # what the API lists: every template in templates/
# Journeys wait for consent (a week of journey time) after their first partner call.
ANSWERS: dict[str, dict[str, Any] | Exception] = {
    "consent.request": {"request_id": "CR-1"},
    "payer.verify_benefits": {"coverage_active": True, "pa_required": False},
    "payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "approved"},
    "payer.submit_appeal": {"pa_number": "PA-2", "outcome": "pended"},
    "pharmacy.refer": {"rx_id": "RX-1"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_patient() -> str:
    """A caller's own patient id, shaped like an MRN (Pitwall maps it to a pseudonym)."""
    return f"MRN-{uuid.uuid4().int % 10**10:010d}"


def start_body(patient_id: str, **extra: Any) -> dict[str, Any]:
    return {"template": TEMPLATE, "patient_id": patient_id, "program": PROGRAM, **extra}


def app_settings(
    data_dir: Path, task_queue: str, address: str = "127.0.0.1:7233", database_url: str = ""
) -> Settings:
    settings = Settings()
    settings.temporal = TemporalSettings(address=address, task_queue=task_queue)
    settings.stack = StackSettings(data_dir=data_dir)
    settings.stack.database_url = database_url or f"sqlite:///{data_dir / 'pitwall.db'}"
    return settings


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, within: float = 10.0, every: float = 0.1
) -> Any:
    """Poll until `probe` returns something truthy (visibility is eventually consistent)."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(every)


@dataclass
class ApiStack:
    env: WorkflowEnvironment
    app: FastAPI
    http: httpx.AsyncClient
    journeys: JourneyGateway
    partners: ScriptedPartners
    settings: Settings
    admin_key: str

    @property
    def temporal(self) -> Client:
        return self.env.client

    @property
    def store(self) -> Store:
        return cast(Store, self.app.state.store)

    def key(self, *scopes: str, name: str = "test") -> str:
        """A new API key with these scopes (the whole `pw_...` key)."""
        return self.store.api_keys.create(name, scopes).secret

    def ref(self, patient_id: str) -> str:
        """Pitwall's pseudonym for a patient id the tests sent."""
        patient_ref = self.store.identities.resolve(patient_id)
        assert patient_ref is not None, "never registered nor started"
        return patient_ref

    async def start(self, patient_id: str | None = None) -> str:
        body = start_body(patient_id or new_patient())
        response = await self.http.post("/v1/journeys", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["journey_id"])

    async def reaches(self, journey_id: str, step: str, within: float = 15.0) -> None:
        async def there() -> bool:
            state = await self.journeys.state(journey_id)
            return state.current_step == step and state.pending_wait is not None

        assert await eventually(there, within=within), f"{journey_id} never reached {step}"


def admin_key(app: FastAPI) -> str:
    store = cast(Store, app.state.store)
    return store.api_keys.create("test-admin", ["admin"]).secret


@asynccontextmanager
async def running(app: FastAPI, *, key: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (migrations run), and a client sending an admin key."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        if key:
            http.headers.update(bearer(admin_key(app)))
        yield http


@pytest.fixture(scope="session")
def api_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite, or a throwaway schema of the test Postgres when one is configured."""
    pg = postgres_test_url()
    with ExitStack() as stack:
        if pg:
            yield stack.enter_context(throwaway_schema(pg))
        else:
            yield f"sqlite:///{tmp_path_factory.mktemp('api-db') / 'pitwall.db'}"


@pytest.fixture(scope="session")
async def api(
    local_env: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
    api_database_url: str,
) -> AsyncIterator[ApiStack]:
    queue = f"api-{uuid.uuid4().hex[:8]}"
    partners = ScriptedPartners(ANSWERS)
    settings = app_settings(tmp_path_factory.mktemp("api"), queue, database_url=api_database_url)
    app = create_app(settings, temporal=local_env.client)
    async with (
        Worker(
            local_env.client,
            task_queue=queue,
            workflows=[TherapyJourney],
            workflow_runner=journey_runner(),
            activities=partners.activities(),
            max_concurrent_workflow_tasks=50,
        ),
        running(app) as http,
    ):
        yield ApiStack(
            env=local_env,
            app=app,
            http=http,
            journeys=JourneyGateway(local_env.client, queue),
            partners=partners,
            settings=settings,
            admin_key=http.headers["authorization"].removeprefix("Bearer "),
        )


@pytest.fixture(scope="session")
async def served(api: ApiStack) -> AsyncIterator[str]:
    """The same app under uvicorn on a loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
