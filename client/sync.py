"""The HTTP client for code without an event loop (scripts, WSGI apps, notebooks):

    with SyncPitwallHttpClient("https://pitwall.example", api_key=KEY) as pitwall:
        print(pitwall.state(journey_id).stage)

Each method is the async client's own, run to completion on a private event loop in a
daemon thread: same arguments, answers and errors, declared once (`blocking`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from client.http import PitwallHttpClient
from contract.journeys import JourneySummary

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="pitwall-http-client", daemon=True
        )
        self.thread.start()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def blocking(
    method: Callable[Concatenate[PitwallHttpClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SyncPitwallHttpClient, P], T]:
    """The async client's `method`, blocking until it is done."""

    def call(self: SyncPitwallHttpClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._runner.run(method(self._client, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class SyncPitwallHttpClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._runner = _LoopThread()
        self._client = PitwallHttpClient(base_url, api_key, timeout=timeout, transport=transport)

    start = blocking(PitwallHttpClient.start)
    state = blocking(PitwallHttpClient.state)
    find = blocking(PitwallHttpClient.find)
    send_event = blocking(PitwallHttpClient.send_event)
    pause = blocking(PitwallHttpClient.pause)
    resume = blocking(PitwallHttpClient.resume)
    cancel = blocking(PitwallHttpClient.cancel)
    templates = blocking(PitwallHttpClient.templates)
    template = blocking(PitwallHttpClient.template)
    register_patient = blocking(PitwallHttpClient.register_patient)
    patient = blocking(PitwallHttpClient.patient)
    timeline = blocking(PitwallHttpClient.timeline)
    consents = blocking(PitwallHttpClient.consents)
    grant_consent = blocking(PitwallHttpClient.grant_consent)
    revoke_consents = blocking(PitwallHttpClient.revoke_consents)
    preferences = blocking(PitwallHttpClient.preferences)
    set_preferences = blocking(PitwallHttpClient.set_preferences)

    def iter_journeys(self, **filters: Any) -> Iterator[JourneySummary]:
        token: str | None = None
        while True:
            page = self.find(**filters, page_token=token)
            yield from page.items
            token = page.next_page_token
            if not token:
                return

    def close(self) -> None:
        try:
            self._runner.run(self._client.aclose())
        finally:
            self._runner.stop()

    def __enter__(self) -> SyncPitwallHttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
