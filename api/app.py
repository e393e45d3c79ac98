"""The HTTP front door: the journey API (/v1/journeys, /v1/templates), patients
(/v1/patients: timeline, consents, preferences), partner webhooks (/v1/webhooks/*) and a
health check. OpenAPI at /openapi.json, docs at /docs. Every /v1 route needs an API key
with the right scope (api/auth.py); webhooks need one too unless
PITWALL_RECEIVER_REQUIRE_WEBHOOK_KEYS is false.

`create_app(settings)` connects to Temporal when the app starts; if Temporal is not
there yet, the app starts anyway and answers 503 + Retry-After until it is. Tests can
pass their own Temporal client and template catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from temporalio.client import Client

from adapters.crm import CrmClient
from api import errors, openapi
from api import journeys as journeys_api
from api import patients as patients_api
from api import tasks as tasks_api
from api import templates as templates_api
from api.catalog import TemplateCatalog
from api.webhooks import Webhooks
from gateway.journeys import JourneyGateway, connect_temporal
from services.callbacks import CallbackService
from services.consents import ConsentService
from services.crm import CrmCompletions
from services.journeys import JourneyStarter
from services.patients import PatientService
from settings import Settings, TemporalSettings, get_settings
from store import Store
from store.db import make_engine, migrate

log = structlog.get_logger("api")

DESCRIPTION = """\
Start, inspect and steer specialty-therapy patient journeys; receive partner callbacks.

* Identifiers are pseudonymous: values that look like phone numbers, dates or SSNs are
  refused, and no error ever echoes a value back.
* Starting is idempotent: the same request (patient x program x business key) returns
  the same journey, 201 the first time and 200 after.
* Errors are RFC 9457 `application/problem+json` with a stable `type`.
* Every /v1 call needs an API key: `Authorization: Bearer pw_<id>_<secret>` (or
  `X-API-Key`). Missing, unknown or revoked → 401; without the scope → 403. Scopes:
  `journeys:read`, `journeys:write`, `patients:read`, `patients:write`,
  `webhooks:<partner>`, and `admin` (all of them). Keys: `starter.py keys create`.
"""


async def temporal_client(config: TemporalSettings) -> Client:
    """Connected now if Temporal answers; else a lazy client that connects on first use."""
    try:
        return await connect_temporal(config.address, config.namespace)
    except RuntimeError:
        log.warning("api.temporal_unreachable_at_start", address=config.address)
        return await connect_temporal(config.address, config.namespace, lazy=True)


def page_token_key(settings: Settings) -> bytes:
    """Listing page tokens are signed with a key of their own, alike on every replica."""
    secret = settings.auth.page_token_key.get_secret_value().encode()
    return hmac.new(secret, b"pitwall/page-token", hashlib.sha256).digest()


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    templates: TemplateCatalog | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.stack.database())
    catalog = templates or TemplateCatalog.load()
    store = Store(
        engine,
        api_key_pepper=settings.auth.key_pepper.get_secret_value(),
        patient_id_key=settings.auth.patient_id_key.get_secret_value().encode(),
    )
    require_webhook_keys = settings.receiver.require_webhook_keys
    callbacks = CallbackService(store)
    patients = PatientService(store)
    crm = None
    if settings.crm_enabled():  # completions from the external CRM queue (services/crm.py)
        p = settings.partners
        crm = CrmCompletions(
            store,
            CrmClient(
                p.url_for("crm", settings.sandbox.base_url()),
                p.crm_access_token.get_secret_value(), timeout=p.timeout_s,
            ),
        )  # fmt: skip
    webhooks = Webhooks(
        callbacks,
        secret=settings.receiver.webhook_secret.get_secret_value(),
        twilio_token=settings.partners.twilio_auth_token.get_secret_value(),
        public_url=settings.receiver.base_url(),
        keys=store.api_keys if require_webhook_keys else None,
        crm=crm,
        crm_secret=settings.crm_client_secret(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(migrate, engine)
        client = temporal or await temporal_client(settings.temporal)
        app.state.page_token_key = page_token_key(settings)  # journeys' and tasks' lists
        journeys = JourneyGateway(
            client, settings.temporal.task_queue, page_token_key=app.state.page_token_key
        )
        callbacks.journeys = journeys
        if crm is not None:
            crm.journeys = journeys
        app.state.journeys = journeys
        app.state.starter = JourneyStarter(journeys, patients)
        app.state.templates = catalog
        yield
        if crm is not None:
            await crm.crm.aclose()
        engine.dispose()

    app = FastAPI(
        title="Pitwall",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.store = store
    app.state.patients = patients
    app.state.consents = ConsentService(store)
    app.state.api_keys = store.api_keys
    errors.install(app)
    app.include_router(journeys_api.router)
    app.include_router(templates_api.router)
    app.include_router(patients_api.router)
    app.include_router(tasks_api.router)
    app.include_router(webhooks.router())

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    openapi.install(app, webhook_keys=require_webhook_keys)
    return app
