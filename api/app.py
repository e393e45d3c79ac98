"""The HTTP front door. For now: partner callbacks (webhooks) and a health check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.webhooks import Webhooks
from client.journeys import JourneyClient, connect_temporal
from settings import Settings, get_settings
from store.db import make_engine, migrate


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.stack.database())

    webhooks = Webhooks(
        engine,
        secret=settings.receiver.webhook_secret.get_secret_value(),
        twilio_token=settings.partners.twilio_auth_token.get_secret_value(),
        public_url=settings.receiver.base_url(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate, engine)
        temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
        webhooks.journeys = JourneyClient(temporal, settings.temporal.task_queue)
        yield
        engine.dispose()

    app = FastAPI(title="Pitwall", version="0.1.0", lifespan=lifespan)
    app.include_router(webhooks.router())

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
