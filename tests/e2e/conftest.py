"""The whole stack over loopback: dev server, sandbox, receiver and worker as processes.

Webhook keys are required (the default): before anything starts, the store gets a
partner key (webhooks:*) that the sandbox sends on its JSON callbacks and the worker
embeds in SMS StatusCallback URLs (basic auth), and an admin key for the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_body
from devtools.processes import Child, Children, wait_for_port
from domain.journey import JourneyState
from gateway.journeys import JourneyGateway
from store import Store
from store.api_keys import WEBHOOK_PARTNERS
from store.db import make_engine, migrate
from store.patients import PatientDirectory
from store.testing import throwaway_schema

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "e2e-program"
SECRET = "e2e-webhook-secret"
TWILIO_TOKEN = "e2e-twilio-token"
PEPPER = "e2e-api-key-pepper"
PATIENT_ID_KEY = "e2e-patient-id-key"
PARTNER_SCOPES = [f"webhooks:{p}" for p in WEBHOOK_PARTNERS]
# A journey-day per real second; a 1-day refill lead keeps the whole journey to seconds.
TIME_SCALE = 86400.0
FAST_PARAMS = {"days_supply": 8, "refill_lead_days": 7}
FAST_PARTNERS = {
    "consent_after_seconds": 0.1,
    "ship_after_seconds": 0.2,
    "deliver_after_seconds": 0.2,
    "sms_status_interval_seconds": 0.05,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    journeys: JourneyGateway
    children: Children
    sandbox_url: str
    receiver_url: str
    directory: PatientDirectory
    store: Store
    partner_key: str  # webhooks:* — what the sandbox sends
    admin_key: str
    worker: Child | None = None
    external: dict[str, str] = field(default_factory=dict)  # pseudonym → our patient id

    @property
    def partner_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.partner_key}"}

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    # -- processes -------------------------------------------------------------------
    def start_worker(self) -> None:
        self.worker = self.children.start("worker", [sys.executable, str(ROOT / "worker.py")])

    def kill_worker(self) -> None:
        assert self.worker is not None
        os.kill(self.worker.proc.pid, signal.SIGKILL)
        self.worker.proc.wait()
        self.children.running.remove(self.worker)
        self.worker = None

    # -- patients and journeys ---------------------------------------------------------
    def new_patient(
        self,
        scenario: dict[str, Any],
        sms_consent: bool = True,
        phone: str = "+15555550199",
        plan_type: str | None = None,
    ) -> str:
        """A patient registered and consented over HTTP, as a hub intake service would;
        returns Pitwall's pseudonym (what the sandbox sees). `external[ref]` is our id."""
        patient_id = f"e2e-{uuid.uuid4().hex[:12]}"
        with httpx.Client(base_url=self.receiver_url, headers=self.admin_headers) as api:
            put = api.put(
                f"/v1/patients/{patient_id}",
                json={
                    "telecom": [
                        {"system": "phone", "value": phone},
                        {"system": "email", "value": f"{patient_id}@example.com"},
                    ],
                    "timezone": "America/New_York",
                    **(
                        {"coverage": [{"payor": "payer-sandbox", "plan_type": plan_type}]}
                        if plan_type
                        else {}
                    ),
                },
            )
            assert put.status_code == 201, put.text
            ref = str(put.json()["patient_ref"])
            if sms_consent:
                for purpose in ("treatment", "adherence"):
                    grant = api.post(
                        f"/v1/patients/{patient_id}/consents",
                        json={"channel": "sms", "purpose": purpose, "program": PROGRAM},
                    )
                    assert grant.status_code == 201, grant.text
        self.external[ref] = patient_id
        put = httpx.put(
            f"{self.sandbox_url}/_sandbox/scenarios/{ref}", json={**FAST_PARTNERS, **scenario}
        )
        put.raise_for_status()
        return ref

    async def start(
        self,
        patient_ref: str,
        version: int = 1,  # v2's paths: test_hub_paths_e2e.py
        params: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> str:
        """Through POST /v1/journeys, by our own patient id."""
        async with httpx.AsyncClient(base_url=self.receiver_url, headers=self.admin_headers) as api:
            response = await api.post(
                "/v1/journeys",
                json={
                    "template": "specialty_start",
                    "template_version": version,
                    "patient_id": self.external[patient_ref],
                    "program": PROGRAM,
                    "params": (FAST_PARAMS if version == 1 else {}) if params is None else params,
                    "context": context or {},
                    "time_scale": TIME_SCALE,
                },
            )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["journey_id"])

    async def finished(self, journey_id: str, within: float = 60) -> JourneyState:
        return await asyncio.wait_for(self.journeys.result(journey_id), within)

    async def reaches(self, journey_id: str, step: str, within: float = 30) -> JourneyState:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = await self.journeys.state(journey_id)
            if state.current_step == step:
                return state
            await asyncio.sleep(0.05)
        raise AssertionError(f"{journey_id} never reached {step}")

    async def pharmacy_says(self, rx_id: str, *kinds: str) -> list[list[str]]:
        """Signed pharmacy callbacks naming only the pharmacy's Rx id, as a pharmacy that
        does not echo our reference sends them; the receiver's outcomes for each."""
        outcomes = []
        async with httpx.AsyncClient(headers=self.partner_headers) as http:
            for kind in kinds:
                body = json.dumps({"event_id": f"evt-{kind}-{rx_id}", "type": f"pharmacy.{kind}",
                                   "rx_id": rx_id, "occurred_at": "2026-01-01T00:00:00Z",
                                   "days_supply": 28}).encode()  # fmt: skip
                ts = str(int(time.time()))
                headers = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign_body(SECRET, ts, body)}
                answer = await http.post(
                    f"{self.receiver_url}/v1/webhooks/pharmacy", content=body, headers=headers
                )
                outcomes.append(list(answer.json()["outcomes"]))
        return outcomes

    # -- what the partners saw -----------------------------------------------------------
    def received(self, patient_ref: str) -> list[dict[str, Any]]:
        rows = httpx.get(
            f"{self.sandbox_url}/_sandbox/received", params={"patient_ref": patient_ref}
        )
        rows.raise_for_status()
        return list(rows.json())

    def messages(self, patient_ref: str) -> list[dict[str, Any]]:
        rows = httpx.get(
            f"{self.sandbox_url}/_sandbox/messages", params={"patient_ref": patient_ref}
        )
        rows.raise_for_status()
        return list(rows.json())

    def callbacks(self, patient_ref: str) -> list[dict[str, Any]]:
        rows = httpx.get(
            f"{self.sandbox_url}/_sandbox/callbacks", params={"patient_ref": patient_ref}
        )
        rows.raise_for_status()
        return list(rows.json())


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with stack_env_in(tmp_path_factory.mktemp("stack")) as env:
        yield env


@contextmanager
def stack_env_in(data: Path) -> Iterator[dict[str, str]]:
    """A stack's settings, its files under `data`: SQLite unless PITWALL_TEST_DATABASE_URL
    names a Postgres (then a throwaway schema)."""
    pg = os.environ.get("PITWALL_TEST_DATABASE_URL", "")
    with (
        throwaway_schema(pg) if pg.startswith("postgres")
        else nullcontext(f"sqlite:///{data / 'pitwall.db'}")
    ) as database_url:  # fmt: skip
        yield _stack_env(data, database_url)


def _stack_env(data: Path, database_url: str) -> dict[str, str]:
    return {
        "PITWALL_DATA_DIR": str(data),
        "DATABASE_URL": database_url,
        "PITWALL_SANDBOX_PORT": str(free_port()),
        "PITWALL_RECEIVER_PORT": str(free_port()),
        "PITWALL_RECEIVER_WEBHOOK_SECRET": SECRET,
        "PITWALL_PARTNER_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PITWALL_AUTH_KEY_PEPPER": PEPPER,
        "PITWALL_AUTH_PATIENT_ID_KEY": PATIENT_ID_KEY,
        "PITWALL_RECEIVER_REQUIRE_WEBHOOK_KEYS": "true",
        "PITWALL_TEMPORAL_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "PITWALL_LOG_FORMAT": "json",
    }


@pytest.fixture(scope="session")
async def stack(local_env: WorkflowEnvironment, stack_env: dict[str, str]) -> AsyncIterator[Stack]:
    async with open_stack(local_env, stack_env) as opened:
        yield opened


@asynccontextmanager
async def open_stack(env: WorkflowEnvironment, stack_env: dict[str, str]) -> AsyncIterator[Stack]:
    """Sandbox, receiver and worker processes against `env`'s Temporal, and the store."""
    address = env.client.service_client.config.target_host
    engine = make_engine(stack_env["DATABASE_URL"])
    migrate(engine)
    store = Store(engine, api_key_pepper=PEPPER, patient_id_key=PATIENT_ID_KEY.encode())
    partner_key = store.api_keys.create("e2e-sandbox", PARTNER_SCOPES).secret
    admin_key = store.api_keys.create("e2e-admin", ["admin"]).secret
    processes_env = {
        **os.environ,
        **stack_env,
        "PITWALL_TEMPORAL_ADDRESS": address,
        "PITWALL_RECEIVER_SMS_CALLBACK_API_KEY": partner_key,  # the worker's StatusCallback
    }
    children = Children(log_dir=Path(stack_env["PITWALL_DATA_DIR"]) / "logs", env=processes_env)
    sandbox_port = int(stack_env["PITWALL_SANDBOX_PORT"])
    receiver_port = int(stack_env["PITWALL_RECEIVER_PORT"])
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    try:
        sandbox = children.start(
            "sandbox",
            [
                sys.executable, "-m", "sandbox", "--port", str(sandbox_port),
                "--callback-url", receiver_url, "--secret", SECRET,
                "--twilio-auth-token", TWILIO_TOKEN, "--callback-api-key", partner_key,
            ],
        )  # fmt: skip
        receiver = children.start("receiver", [sys.executable, "-m", "api"])
        wait_for_port("127.0.0.1", sandbox_port, 30, sandbox)
        wait_for_port("127.0.0.1", receiver_port, 30, receiver)
        stack = Stack(
            journeys=JourneyGateway(env.client, stack_env["PITWALL_TEMPORAL_TASK_QUEUE"]),
            children=children,
            sandbox_url=f"http://127.0.0.1:{sandbox_port}",
            receiver_url=receiver_url,
            directory=PatientDirectory(engine),
            store=store,
            partner_key=partner_key,
            admin_key=admin_key,
        )
        stack.start_worker()
        yield stack
    finally:
        children.stop_all()
        engine.dispose()
