"""A PA approval's expiry: PAS ClaimResponse.preAuthPeriod.end → `PriorAuthResult.expires_on`
and a `pa.decided` event's ``data.expires_on``; parsed and against the sandbox over loopback."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters import payer
from adapters.payer import PayerClient
from domain.partners import PartnerEvent, PriorAuthRequest, PriorAuthResult
from tests.sandbox.harness import Sink, put_scenario

STANDARDS = Path(__file__).resolve().parents[1] / "fixtures" / "standards" / "pas"
APPROVED = "response/Bundle-ReferralAuthorizationResponseBundleExample.json"  # A1, AUTH0001
PENDED = "response/Bundle-ReferralPendingAuthorizationResponseBundleExample.json"  # A4
DENIED = "response/Bundle-RejectionResponseBundleExample.json"  # A3
NOTIFICATION = "other/Bundle-PASSubscriptionNotification.json"  # carries an approval
DEFAULT_VALID_DAYS = 180


def load(path: str) -> Any:
    return json.loads((STANDARDS / path).read_text(encoding="utf-8"))


def with_period(path: str, period: dict[str, Any] | None) -> dict[str, Any]:
    """The official response bundle, its ClaimResponse given this preAuthPeriod."""
    bundle = copy.deepcopy(load(path))
    cr = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClaimResponse"
    )
    cr.pop("preAuthPeriod", None)
    if period is not None:
        cr["preAuthPeriod"] = period
    return bundle


def notified(response_bundle: dict[str, Any]) -> dict[str, Any]:
    """The official subscription notification, carrying this response bundle."""
    note = copy.deepcopy(load(NOTIFICATION))
    note["entry"][1]["resource"] = response_bundle
    return note


def today() -> date:
    return datetime.now(UTC).date()


def days_on(first: date, last: date, days: int) -> set[date]:
    """Each decision day in [first, last] plus `days` (a test may straddle midnight UTC)."""
    return {first + timedelta(days=n + days) for n in range((last - first).days + 1)}


def base(patient: str, **extra: Any) -> dict[str, Any]:
    return {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": f"wf-1/step-{uuid.uuid4().hex[:8]}",
        "drug_code": "1",
        **extra,
    }


def to_payer(pa_number: str) -> Any:
    return lambda r: r.path == "/v1/webhooks/payer" and pa_number.encode() in r.body


# --------------------------------------------------------------------------- parsing


def test_the_official_approval_without_a_period_does_not_say_when_it_expires() -> None:
    assert "preAuthPeriod" not in json.dumps(load(APPROVED))
    result = payer.parse_pas_response(load(APPROVED))
    assert (result.outcome, result.review_action_code) == ("approved", "A1")
    assert result.expires_on is None
    [event] = payer.parse_notification(load(NOTIFICATION))
    assert event.data["expires_on"] is None


@pytest.mark.parametrize(
    ("end", "expires_on"),
    [
        ("2026-03-31", date(2026, 3, 31)),
        ("2026-03-31T00:00:00Z", date(2026, 3, 31)),
        # the payer's day as written, not moved to UTC (that would be 2026-04-01)
        ("2026-03-31T23:30:00-05:00", date(2026, 3, 31)),
        ("2026-04-01T01:00:00+09:00", date(2026, 4, 1)),
        # partial dates cover their whole month / year (FHIR Period: the end is inclusive)
        ("2026-02", date(2026, 2, 28)),
        ("2028-02", date(2028, 2, 29)),
        ("2026", date(2026, 12, 31)),
    ],
)
def test_an_approval_expires_on_its_pre_auth_period_end(end: str, expires_on: date) -> None:
    bundle = with_period(APPROVED, {"start": "2025-10-01", "end": end})
    assert payer.parse_pas_response(bundle).expires_on == expires_on
    [event] = payer.parse_notification(notified(bundle))
    assert event.type == "pa.decided"
    assert event.data["outcome"] == "approved"
    assert event.data["expires_on"] == expires_on.isoformat()


@pytest.mark.parametrize("period", [None, {"start": "2025-10-01"}])
def test_an_approval_without_a_period_end_does_not_expire_as_far_as_we_know(
    period: dict[str, Any] | None,
) -> None:
    bundle = with_period(APPROVED, period)
    assert payer.parse_pas_response(bundle).expires_on is None
    [event] = payer.parse_notification(notified(bundle))
    assert event.data["expires_on"] is None


@pytest.mark.parametrize(("path", "outcome"), [(DENIED, "denied"), (PENDED, "pended")])
def test_only_an_approval_expires(path: str, outcome: str) -> None:
    """A period on a denial or a pend (not what PAS means by it) is ignored."""
    bundle = with_period(path, {"start": "2025-10-01", "end": "2026-03-31"})
    result = payer.parse_pas_response(bundle)
    assert (result.outcome, result.expires_on) == (outcome, None)


def test_a_notified_denial_says_expires_on_none() -> None:
    bundle = with_period(DENIED, {"start": "2025-10-01", "end": "2026-03-31"})
    [event] = payer.parse_notification(notified(bundle))
    assert event.type == "pa.decided"
    assert (event.data["outcome"], event.data["expires_on"]) == ("denied", None)


# --------------------------------------------------------------------------- sandbox


async def submit(sandbox_url: str, patient: str) -> PriorAuthResult:
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        return await client.submit_prior_auth(PriorAuthRequest(**base(patient)))


async def test_a_sync_approval_expires_pa_valid_days_after_the_decision_by_default(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="approve")
    first = today()
    result = await submit(sandbox_url, patient)
    assert (result.outcome, result.review_action_code) == ("approved", "A1")
    assert result.expires_on in days_on(first, today(), DEFAULT_VALID_DAYS)


async def test_a_sync_approval_expires_pa_valid_days_after_the_decision(
    sandbox_url: str, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="approve", pa_valid_days=45)
    first = today()
    result = await submit(sandbox_url, patient)
    assert result.outcome == "approved"
    assert result.expires_on in days_on(first, today(), 45)


@pytest.mark.parametrize("scenario", ["deny", "pend_approve"])
async def test_a_denial_or_a_pend_does_not_expire(
    sandbox_url: str, patient: str, scenario: str
) -> None:
    await put_scenario(sandbox_url, patient, pa=scenario, pend_seconds=30)
    result = await submit(sandbox_url, patient)
    assert result.outcome in ("denied", "pended")
    assert result.expires_on is None


async def _pended_then_notified(
    sandbox_url: str, sink: Sink, patient: str, scenario: str, **extra: Any
) -> tuple[PartnerEvent, dict[str, Any], set[date]]:
    await put_scenario(sandbox_url, patient, pa=scenario, pend_seconds=0.05, **extra)
    first = today()
    pended = await submit(sandbox_url, patient)
    assert (pended.outcome, pended.expires_on) == ("pended", None)
    [hit] = await sink.wait_for(to_payer(pended.pa_number))
    [event] = payer.parse_notification(hit.body)
    assert event.type == "pa.decided"
    assert event.correlation_key == pended.pa_number
    days = extra.get("pa_valid_days", DEFAULT_VALID_DAYS)
    return event, json.loads(hit.body), days_on(first, today(), days)


async def test_pend_then_approve_notifies_the_expiry_by_default(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    event, note, expected = await _pended_then_notified(sandbox_url, sink, patient, "pend_approve")
    assert event.data["outcome"] == "approved"
    assert date.fromisoformat(event.data["expires_on"]) in expected
    cr = note["entry"][1]["resource"]["entry"][0]["resource"]
    start = date.fromisoformat(cr["preAuthPeriod"]["start"])
    assert event.data["expires_on"] == (start + timedelta(days=DEFAULT_VALID_DAYS)).isoformat()


async def test_pend_then_approve_notifies_the_expiry(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    event, _, expected = await _pended_then_notified(
        sandbox_url, sink, patient, "pend_approve", pa_valid_days=30
    )
    assert event.data["outcome"] == "approved"
    assert date.fromisoformat(event.data["expires_on"]) in expected


async def test_pend_then_deny_notifies_no_expiry(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    event, note, _ = await _pended_then_notified(sandbox_url, sink, patient, "pend_deny")
    assert (event.data["outcome"], event.data["expires_on"]) == ("denied", None)
    assert "preAuthPeriod" not in note["entry"][1]["resource"]["entry"][0]["resource"]
