"""Real servers on loopback for tests: the partner sandbox and a callback sink.

Both run under uvicorn in background threads (their own event loops), bound to free
ports; tests talk to them over HTTP exactly as the platform would.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from sandbox.app import create_app

SECRET = "test-webhook-secret"
TWILIO_TOKEN = "test-twilio-token"
TWILIO_SID = "ACtest0000000000000000000000000000"


class ServerThread:
    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class SinkRequest:
    path: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.monotonic)


class Sink:
    """Captures every POST; can be told to fail the next N requests to a path, or to
    answer a path with a given body (e.g. TwiML) instead of an empty 200."""

    def __init__(self) -> None:
        self.requests: list[SinkRequest] = []
        self.fail_next: dict[str, int] = {}
        self.answers: dict[str, tuple[bytes, str]] = {}  # path -> (body, content type)
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.url = ""

        @self.app.post("/{path:path}")
        async def receive(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            with self._lock:
                remaining = self.fail_next.get(path, 0)
                status = 503 if remaining > 0 else 200
                if remaining > 0:
                    self.fail_next[path] = remaining - 1
                self.requests.append(
                    SinkRequest(path, str(request.url), dict(request.headers), body, status)
                )
                answer = self.answers.get(path) if status == 200 else None
            if answer is not None:
                return Response(content=answer[0], status_code=status, media_type=answer[1])
            return Response(status_code=status)

    def matching(self, pred: Callable[[SinkRequest], bool]) -> list[SinkRequest]:
        with self._lock:
            return [r for r in self.requests if pred(r)]

    async def wait_for(
        self, pred: Callable[[SinkRequest], bool], count: int = 1, within: float = 5.0
    ) -> list[SinkRequest]:
        deadline = time.monotonic() + within
        while True:
            found = self.matching(pred)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} callbacks, got {len(found)}")
            await asyncio.sleep(0.02)


def containing(text: str) -> Callable[[SinkRequest], bool]:
    needle = text.encode()
    return lambda r: needle in r.body


@pytest.fixture(scope="session")
def sink() -> Iterator[Sink]:
    s = Sink()
    server = ServerThread(s.app).start()
    s.url = server.url
    yield s
    server.stop()


@pytest.fixture(scope="session")
def sandbox_url(sink: Sink) -> Iterator[str]:
    server = ServerThread(create_app(sink.url, SECRET, TWILIO_TOKEN)).start()
    yield server.url
    server.stop()


@pytest.fixture
def patient() -> str:
    return f"pt-{uuid.uuid4().hex[:10]}"


async def put_scenario(base: str, patient_ref: str, **fields: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{base}/_sandbox/scenarios/{patient_ref}", json=fields)
        response.raise_for_status()
        return dict(response.json())


async def get_json(base: str, path: str, **params: str) -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}{path}", params=params)
        response.raise_for_status()
        return response.json()


async def settled(base: str, patient_ref: str, within: float = 5.0) -> None:
    """Until the sandbox has nothing more scheduled for the patient: a sync point for
    checking what it sent (and did not send) without sleeping."""
    deadline = time.monotonic() + within
    while (await get_json(base, "/_sandbox/scheduled", patient_ref=patient_ref))["scheduled"]:
        if time.monotonic() > deadline:
            raise AssertionError("the sandbox still has callbacks scheduled")
        await asyncio.sleep(0.02)


async def wait_until(
    probe: Callable[[], Awaitable[Any]], within: float = 5.0, every: float = 0.02
) -> Any:
    """Poll ``probe`` until it returns something truthy; that value."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)
