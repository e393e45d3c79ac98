"""Activities: thin wrappers that call adapters or the store and map errors."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from activities.crm import CrmPush
from activities.messaging import MessagingActivities
from activities.partners import PartnerActivities
from activities.tasks import TaskActivities
from activities.timeline import TimelineActivities
from adapters.crm import CrmClient
from adapters.email import EmailClient
from adapters.sms import SmsClient
from adapters.voice import VoiceClient
from domain.partner_actions import ACTIONS
from settings import Settings
from store import Store
from store.contact_gate import ContactGate


def build_activities(settings: Settings, store: Store) -> list[Callable[..., Any]]:
    p = settings.partners
    sandbox = settings.sandbox.base_url()
    clients = {
        partner: importlib.import_module(f"adapters.{partner}").Client(
            p.url_for(partner, sandbox), timeout=p.timeout_s
        )
        for partner in dict.fromkeys(a.partner for a in ACTIONS.values())
    }
    partners = PartnerActivities(
        clients, store.timeline, store.correlations, plan_type_of=store.patients.plan_type
    )
    messaging = MessagingActivities(
        sms=SmsClient(
            p.sms_url or sandbox,
            account_sid=p.twilio_account_sid,
            auth_token=p.twilio_auth_token.get_secret_value(),
            from_number=p.sms_from,
            timeout=p.timeout_s,
        ),
        email=EmailClient(
            p.email_url or sandbox,
            api_key=p.sendgrid_api_key.get_secret_value(),
            from_email=p.email_from,
            timeout=p.timeout_s,
        ),
        store=store,
        callback_base=settings.receiver.base_url(),
        callback_api_key=settings.receiver.sms_callback_api_key.get_secret_value(),
        voice=VoiceClient(
            p.voice_url or p.sms_url or sandbox,
            account_sid=p.twilio_account_sid,
            auth_token=p.twilio_auth_token.get_secret_value(),
            from_number=p.sms_from,
            timeout=p.timeout_s,
        ),
        gate=ContactGate(store.engine, settings.contact.rules()),
        partner_timeout=p.timeout_s,
    )
    crm = None
    if settings.crm_enabled():  # the external CRM work queue (activities/crm.py)
        client = CrmClient(
            p.url_for("crm", sandbox), p.crm_access_token.get_secret_value(), timeout=p.timeout_s
        )
        crm = CrmPush(client, store.tasks, link_base=settings.receiver.base_url())
    return [
        *partners.activities(),
        messaging.contact,
        messaging.send,
        TimelineActivities(store.timeline).record,
        TaskActivities(store.tasks, crm).record,
    ]
