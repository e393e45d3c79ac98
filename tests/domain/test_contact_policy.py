"""The contact policy, rule by rule (table tests of `decide`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.contact_policy import (
    DEFAULT_RULES,
    Cap,
    ChannelCheck,
    ConsentFacts,
    ContactRules,
    Decision,
    MessageFacts,
    PastContact,
    PatientFacts,
    PreferenceFacts,
    decide,
)

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
LA = ZoneInfo("America/Los_Angeles")
PHONE = "+12125550123"  # New York
CHICAGO_PHONE = "+13125550123"
DEMO_PHONE = "+15555550123"  # not placed by the metadata
EMAIL = "pat@example.org"
PROGRAM = "PRG"
# A Tuesday, 14:00 in New York.
NOW = datetime(2025, 6, 10, 14, 0, tzinfo=NY).astimezone(UTC)


def local(hour: int, minute: int = 0, zone: ZoneInfo = NY, day: int = 10) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=zone).astimezone(UTC)


def patient(**kw: Any) -> PatientFacts:
    fields: dict[str, Any] = {
        "addresses": {"sms": PHONE, "voice": PHONE, "email": EMAIL},
        "timezone": "America/New_York",
    }
    return PatientFacts(**{**fields, **kw})


def consent(channel: str = "sms", **kw: Any) -> ConsentFacts:
    fields: dict[str, Any] = {
        "channel": channel,
        "address": EMAIL if channel == "email" else PHONE,
        "purpose": "treatment",
        "program": PROGRAM,
        "granted_at": NOW - timedelta(days=30),
    }
    return ConsentFacts(**{**fields, **kw})


ALL_CONSENTS = [
    consent(c, purpose=p, method="written")
    for c in ("sms", "voice", "email", "push")
    for p in ("treatment", "adherence", "marketing")
]


def message(**kw: Any) -> MessageFacts:
    fields: dict[str, Any] = {
        "purpose": "treatment",
        "message_class": "clinical",
        "channels": ["sms"],
        "dedupe_key": "welcome:j1",
        "program": PROGRAM,
    }
    return MessageFacts(**{**fields, **kw})


def sent(
    channel: str = "sms",
    at: datetime = NOW - timedelta(hours=2),
    purpose: str = "treatment",
    status: str = "sent",
    key: str | None = "other",
) -> PastContact:
    return PastContact.model_validate(
        {"channel": channel, "purpose": purpose, "status": status, "sent_at": at, "dedupe_key": key}
    )


def run(
    *,
    who: PatientFacts | None = None,
    consents: list[ConsentFacts] | None = None,
    prefs: PreferenceFacts | None = None,
    opted_out: bool = False,
    history: list[PastContact] | None = None,
    now: datetime = NOW,
    rules: ContactRules = DEFAULT_RULES,
    **msg: Any,
) -> Decision:
    return decide(
        who or patient(),
        ALL_CONSENTS if consents is None else consents,
        prefs,
        opted_out,
        history or [],
        now,
        message(**msg),
        rules,
    )


def test_sends_on_the_first_channel_with_consent() -> None:
    d = run()
    assert (d.action, d.channel, d.address, d.reason, d.until) == ("send", "sms", PHONE, None, None)
    assert d.timezone == "America/New_York"
    assert d.checks == [ChannelCheck(channel="sms", verdict="ok")]


# -- 1. who may not be contacted at all ------------------------------------------------


def test_erased() -> None:
    assert run(who=patient(erased=True), opted_out=True).reason == "erased"


def test_opted_out_revokes_every_channel() -> None:
    d = run(opted_out=True, channels=["sms", "email", "task"], message_class="safety")
    assert (d.action, d.reason) == ("suppress", "opted_out")


def test_do_not_contact() -> None:
    d = run(prefs=PreferenceFacts(do_not_contact=True), message_class="safety")
    assert (d.action, d.reason) == ("suppress", "do_not_contact")


# -- 2. duplicates ----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["sending", "sent", "delivered", "unknown"])
def test_the_same_content_for_the_same_reason_goes_once(status: str) -> None:
    old = sent(status=status, key="welcome:j1", channel="email", at=NOW - timedelta(days=90))
    d = run(history=[old], message_class="safety")
    assert (d.action, d.reason) == ("suppress", "duplicate_content")


@pytest.mark.parametrize("status", ["planned", "failed", "deferred", "suppressed"])
def test_a_try_that_did_not_go_is_no_duplicate(status: str) -> None:
    old = sent(status=status, key="welcome:j1", at=NOW - timedelta(days=3))
    assert run(history=[old]).action == "send"


# -- 3. candidates: address, consent, ranking, exclude -----------------------------------


def test_no_address_on_file() -> None:
    d = run(who=patient(addresses={"email": EMAIL}))
    assert (d.action, d.reason) == ("suppress", "no_contact")
    assert d.checks == [ChannelCheck(channel="sms", verdict="skipped", reason="no_contact")]


def test_no_consent() -> None:
    d = run(consents=[consent("email")])
    assert (d.action, d.reason) == ("suppress", "no_consent")


def test_consent_for_another_address_number_changed() -> None:
    d = run(consents=[consent(address="+12125550999")])
    assert (d.action, d.reason) == ("suppress", "no_consent")


@pytest.mark.parametrize(
    "changes",
    [
        {"expires_at": NOW - timedelta(days=1)},
        {"expires_at": NOW},  # expires_at is exclusive
        {"granted_at": NOW + timedelta(minutes=1)},  # not yet granted
        {"revoked_at": NOW - timedelta(days=1)},
        {"status": "inactive"},
        {"status": "rejected"},
        {"purpose": "adherence"},
        {"program": "OTHER"},
        {"channel": "voice"},
    ],
    ids=lambda c: next(iter(c)) + "=" + str(next(iter(c.values()))),
)
def test_consent_not_in_force_or_for_something_else(changes: dict[str, Any]) -> None:
    assert run(consents=[consent(**changes)]).reason == "no_consent"


def test_consent_in_force_until_it_expires() -> None:
    d = run(consents=[consent(expires_at=NOW + timedelta(seconds=1))])
    assert d.action == "send"


def test_marketing_needs_written_consent() -> None:
    kw: dict[str, Any] = {"purpose": "marketing", "message_class": "promotional"}
    keyword = consent(purpose="marketing", method="sms_keyword")
    assert run(consents=[keyword], **kw).reason == "no_consent"
    verbal = consent(purpose="marketing", method="verbal")
    assert run(consents=[verbal], **kw).reason == "no_consent"
    written = consent(purpose="marketing", method="electronic_signature")
    assert run(consents=[written], **kw).action == "send"


def test_detail_allowed_comes_from_the_consent_used() -> None:
    assert run(consents=[consent(detail_allowed=True)]).detail_allowed is True
    assert run(consents=[consent()]).detail_allowed is False


def test_the_newest_consent_in_force_is_used() -> None:
    older = consent(detail_allowed=True, granted_at=NOW - timedelta(days=60))
    newer = consent(detail_allowed=False, granted_at=NOW - timedelta(days=1))
    assert run(consents=[newer, older]).detail_allowed is False


def test_channel_ranking_orders_the_allowed_channels() -> None:
    prefs = PreferenceFacts(channel_ranking=["email", "push"])
    d = run(prefs=prefs, channels=["sms", "voice", "email"])
    assert (d.action, d.channel, d.address) == ("send", "email", EMAIL)
    # Ranked first, then the others in template order; "push" is not allowed here.
    assert [c.channel for c in d.checks] == ["email", "sms", "voice"]
    assert [c.reason for c in d.checks] == [None, "lower_rank", "lower_rank"]


def test_exclude_falls_back_to_the_next_channel() -> None:
    d = run(channels=["sms", "email"], exclude=["sms"])
    assert (d.action, d.channel) == ("send", "email")
    assert d.checks[-1] == ChannelCheck(channel="sms", verdict="skipped", reason="excluded")


def test_every_channel_excluded() -> None:
    d = run(channels=["sms", "email"], exclude=["sms", "email"])
    assert (d.action, d.reason) == ("suppress", "no_channel_left")


def test_the_most_telling_reason() -> None:
    # sms has a number but no consent; email has no address: no_consent wins.
    who = patient(addresses={"sms": PHONE})
    d = run(who=who, consents=[], channels=["email", "sms"])
    assert (d.reason, [c.reason for c in d.checks]) == ("no_consent", ["no_contact", "no_consent"])
    d = run(who=patient(addresses={}), consents=[], channels=["email", "sms"], exclude=["voice"])
    assert d.reason == "no_contact"


def test_a_task_needs_a_phone_but_no_consent() -> None:
    d = run(consents=[], channels=["sms", "task"])
    assert (d.action, d.channel, d.address, d.detail_allowed) == ("send", "task", PHONE, False)
    assert run(who=patient(addresses={"email": EMAIL}), channels=["task"]).reason == "no_contact"


def test_a_task_is_never_used_for_marketing() -> None:
    d = run(channels=["task"], purpose="marketing", message_class="promotional")
    assert (d.action, d.reason) == ("suppress", "no_consent")
    assert d.checks[0].reason == "not_for_marketing"


# -- 4. frequency caps ---------------------------------------------------------------------


def test_cap_defers_until_the_slot_frees() -> None:
    last = NOW - timedelta(hours=2)
    d = run(history=[sent(at=last)])
    assert (d.action, d.reason, d.channel, d.until) == (
        "defer",
        "frequency_cap",
        "sms",
        last + timedelta(days=1),
    )
    assert d.checks == [ChannelCheck(channel="sms", verdict="skipped", reason="frequency_cap")]


def test_cap_is_per_purpose() -> None:
    # An adherence text does not use the treatment cap.
    assert run(history=[sent(purpose="adherence")]).action == "send"
    assert run(history=[sent(purpose="adherence")], purpose="adherence").action == "defer"


def test_cap_is_per_channel() -> None:
    d = run(history=[sent("sms")], channels=["sms", "email"])
    assert (d.action, d.channel) == ("send", "email")
    assert [c.reason for c in d.checks] == ["frequency_cap", None]


def test_cap_window_is_rolling() -> None:
    assert run(history=[sent(at=NOW - timedelta(hours=23, minutes=59))]).action == "defer"
    assert run(history=[sent(at=NOW - timedelta(hours=24))]).action == "send"


def test_weekly_cap() -> None:
    oldest = NOW - timedelta(days=6, hours=20)
    history = [sent(at=at) for at in (oldest, NOW - timedelta(days=4), NOW - timedelta(days=2))]
    d = run(history=history)
    assert (d.action, d.reason) == ("defer", "frequency_cap")
    assert d.until == oldest + timedelta(days=7)  # the oldest leaves the window (18:00 local)
    assert run(history=history[1:]).action == "send"


@pytest.mark.parametrize("status", ["sending", "delivered", "unknown"])
def test_cap_counts_contacts_that_may_have_gone(status: str) -> None:
    assert run(history=[sent(status=status)]).reason == "frequency_cap"


@pytest.mark.parametrize("status", ["failed", "planned", "deferred", "suppressed"])
def test_cap_ignores_contacts_that_did_not_go(status: str) -> None:
    assert run(history=[sent(status=status)]).action == "send"


def test_a_contact_in_flight_without_sent_at_counts_now() -> None:
    d = run(history=[sent(status="sending", at=None)])  # type: ignore[arg-type]
    assert (d.reason, d.until) == ("frequency_cap", NOW + timedelta(days=1))


def test_cap_deferral_respects_quiet_hours() -> None:
    # The slot frees at 22:00 local: the text waits for 08:00 the next morning.
    d = run(history=[sent(at=local(22, day=9))])
    assert (d.action, d.reason, d.until) == ("defer", "frequency_cap", local(8, day=11))


def test_cap_deferral_goes_to_the_earliest_channel() -> None:
    history = [
        sent("sms", at=NOW - timedelta(hours=20)),
        sent("email", at=NOW - timedelta(hours=2)),
    ]
    d = run(history=history, channels=["sms", "email"])
    assert (d.reason, d.channel, d.until) == ("frequency_cap", "sms", NOW + timedelta(hours=4))


def test_configured_caps() -> None:
    rules = ContactRules(caps={"sms": Cap(per_day=2, per_week=5)})
    assert run(history=[sent()], rules=rules).action == "send"
    assert run(history=[sent(), sent()], rules=rules).action == "defer"
    # A channel without a cap is uncapped.
    assert run(history=[sent("email")], channels=["email"], rules=rules).action == "send"


def test_task_is_uncapped() -> None:
    history = [sent("task", at=NOW - timedelta(hours=h)) for h in (1, 2, 3)]
    assert run(history=history, channels=["task"]).action == "send"


# -- 5. quiet hours -----------------------------------------------------------------------


@pytest.mark.parametrize("zone", [CHICAGO, LA], ids=str)
def test_due_at_2130_is_deferred_to_0800_next_day(zone: ZoneInfo) -> None:
    who = patient(timezone=zone.key)
    d = run(who=who, now=local(21, 30, zone))
    assert (d.action, d.reason, d.channel) == ("defer", "quiet_hours", "sms")
    assert d.until == local(8, 0, zone, day=11)
    assert d.until.tzinfo == UTC
    assert d.timezone == zone.key
    assert d.checks == [ChannelCheck(channel="sms", verdict="ok", reason="quiet_hours")]


def test_zone_from_the_phone_number_when_the_store_has_none() -> None:
    who = patient(timezone=None, addresses={"sms": CHICAGO_PHONE})
    consents = [consent(address=CHICAGO_PHONE)]
    # 21:30 in Chicago is 22:30 in New York; 07:30 in Chicago is 08:30 in New York.
    d = run(who=who, consents=consents, now=local(21, 30, CHICAGO))
    assert (d.reason, d.until, d.timezone) == (
        "quiet_hours",
        local(8, 0, CHICAGO, 11),
        "America/Chicago",
    )
    assert run(who=who, consents=consents, now=local(7, 30, CHICAGO)).action == "defer"
    assert run(who=who, consents=consents, now=local(19, 30, CHICAGO)).action == "send"


def test_a_demo_number_falls_back_to_the_default_zone() -> None:
    who = patient(timezone=None, addresses={"sms": DEMO_PHONE})
    consents = [consent(address=DEMO_PHONE)]
    d = run(who=who, consents=consents, now=local(20, 30, CHICAGO))  # 21:30 New York
    assert (d.reason, d.until, d.timezone) == ("quiet_hours", local(8, day=11), "America/New_York")
    rules = ContactRules(default_timezone="America/Los_Angeles")
    d = run(who=who, consents=consents, now=local(20, 30, CHICAGO), rules=rules)
    assert (d.action, d.timezone) == ("send", "America/Los_Angeles")


def test_the_store_zone_wins_over_the_number() -> None:
    who = patient(timezone="America/Los_Angeles")  # a New York number
    assert run(who=who, now=local(21, 30)).action == "send"  # 18:30 in Los Angeles


def test_window_bounds() -> None:
    assert run(now=local(8, 0)).action == "send"  # start inclusive
    assert run(now=local(19, 59)).action == "send"
    assert run(now=local(20, 0)).reason == "quiet_hours"  # end exclusive
    assert run(now=local(7, 59)).until == local(8, 0)  # same morning


def test_safety_at_2300_sends() -> None:
    d = run(now=local(23), message_class="safety", history=[sent()])
    assert (d.action, d.channel) == ("send", "sms")


def test_promotional_at_2300_defers() -> None:
    d = run(now=local(23), purpose="marketing", message_class="promotional")
    assert (d.action, d.reason, d.until) == ("defer", "quiet_hours", local(8, day=11))


@pytest.mark.parametrize("cls", ["clinical", "operational"])
def test_non_urgent_at_2300_defers(cls: str) -> None:
    assert run(now=local(23), message_class=cls).reason == "quiet_hours"


def test_quiet_hours_channels() -> None:
    # Email waits in an inbox; a task is worked by staff in business hours.
    assert run(now=local(23), channels=["email"]).action == "send"
    assert run(now=local(23), channels=["task"]).action == "send"
    assert run(now=local(23), channels=["voice"]).reason == "quiet_hours"
    who = patient(addresses={"push": "device-token-1"})
    push = [consent("push", address="device-token-1")]
    assert run(who=who, consents=push, now=local(23), channels=["push"]).reason == "quiet_hours"


def test_the_chosen_channel_waits_for_its_window() -> None:
    # sms is chosen; at 23:00 it waits rather than falling back to email.
    d = run(now=local(23), channels=["sms", "email"])
    assert (d.action, d.reason, d.channel, d.until) == (
        "defer",
        "quiet_hours",
        "sms",
        local(8, day=11),
    )
    assert [c.reason for c in d.checks] == ["quiet_hours", "lower_rank"]


def test_quiet_deferral_takes_a_channel_whose_cap_frees_first() -> None:
    # sms is free but quiet until 08:00; email (ranked first) frees at 02:00 and has no
    # quiet hours: the message goes by email at 02:00.
    history = [sent("email", at=local(2, day=10))]
    d = run(now=local(23), history=history, channels=["email", "sms"])
    assert (d.reason, d.channel, d.until) == ("quiet_hours", "email", local(2, day=11))


def test_preferred_window() -> None:
    prefs = PreferenceFacts(contact_from=time(10), contact_until=time(18))
    d = run(prefs=prefs, now=local(9))
    assert (d.reason, d.until) == ("quiet_hours", local(10))
    assert run(prefs=prefs, now=local(18)).until == local(10, day=11)
    # Only one bound set: the other is the rules'.
    late = PreferenceFacts(contact_until=time(21))
    assert run(prefs=late, now=local(20, 30)).action == "send"
    assert run(prefs=late, now=local(7, 30)).reason == "quiet_hours"


def test_a_preferred_window_never_widens_the_law_for_promotional() -> None:
    wide = PreferenceFacts(contact_from=time(6), contact_until=time(22))
    promo: dict[str, Any] = {"purpose": "marketing", "message_class": "promotional"}
    assert run(prefs=wide, now=local(7), **promo).until == local(8)
    assert run(prefs=wide, now=local(21), **promo).reason == "quiet_hours"
    assert run(prefs=wide, now=local(21)).action == "send"  # clinical: the patient's window
    narrow = PreferenceFacts(contact_from=time(12), contact_until=time(13))
    assert run(prefs=narrow, now=local(11), **promo).until == local(12)


def test_rules_window() -> None:
    rules = ContactRules(quiet_start=time(9), quiet_end=time(17))
    assert run(rules=rules, now=local(8, 30)).until == local(9)
    night = ContactRules(quiet_start=time(20), quiet_end=time(8))  # wraps midnight
    assert run(rules=night, now=local(23)).action == "send"
    assert run(rules=night, now=local(12)).until == local(20)


# -- 7. bypasses -----------------------------------------------------------------------------


def test_safety_bypasses_caps() -> None:
    history = [sent(at=NOW - timedelta(hours=h)) for h in (1, 2, 3, 4)]
    assert run(history=history, message_class="safety").action == "send"


def test_bypass_is_configuration() -> None:
    rules = ContactRules(bypass_quiet_hours=frozenset(), bypass_caps=frozenset({"clinical"}))
    assert run(rules=rules, now=local(23), message_class="safety").reason == "quiet_hours"
    assert run(rules=rules, history=[sent()], message_class="clinical").action == "send"
    assert run(rules=rules, history=[sent()], message_class="safety").reason == "frequency_cap"


def test_marketing_never_bypasses_even_with_a_bypassing_class() -> None:
    d = run(now=local(23), purpose="marketing", message_class="safety")
    assert d.reason == "quiet_hours"
    assert (
        run(history=[sent(purpose="marketing")], purpose="marketing", message_class="safety").reason
        == "frequency_cap"
    )


@pytest.mark.parametrize("field", ["bypass_quiet_hours", "bypass_caps"])
def test_rules_refuse_promotional_bypass(field: str) -> None:
    with pytest.raises(ValidationError, match="promotional"):
        ContactRules.model_validate({field: ["safety", "promotional"]})


@pytest.mark.parametrize(
    "fields",
    [
        {"quiet_start": "08:00", "quiet_end": "08:00"},
        {"default_timezone": "Mars/Olympus_Mons"},
        {"caps": {"sms": {"per_day": 0, "per_week": 3}}},
        {"caps": {"mail": {"per_day": 1, "per_week": 3}}},
    ],
)
def test_rules_refuse_nonsense(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ContactRules.model_validate(fields)


# -- inputs and outputs -------------------------------------------------------------------------


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        run(now=datetime(2025, 6, 10, 14, 0))


def test_naive_history_is_refused() -> None:
    with pytest.raises(ValidationError):
        PastContact(channel="sms", purpose="treatment", status="sent", sent_at=datetime(2025, 6, 1))


def test_deterministic() -> None:
    kw: dict[str, Any] = {"history": [sent()], "channels": ["sms", "email", "task"]}
    assert run(**kw) == run(**kw)


def test_models_round_trip_through_json() -> None:
    d = run(now=local(23), channels=["sms", "email"])
    assert Decision.model_validate_json(d.model_dump_json()) == d
    rules = ContactRules(caps={"sms": Cap(per_day=2, per_week=4)}, quiet_start=time(9))
    assert ContactRules.model_validate(rules.model_dump(mode="json")) == rules
    for model in (
        patient(),
        consent(),
        message(),
        sent(),
        PreferenceFacts(channel_ranking=["sms"]),
    ):
        assert type(model).model_validate(model.model_dump(mode="json")) == model


def test_no_patient_data_in_reprs_or_errors() -> None:
    d = run()
    assert PHONE not in repr(d) and PHONE not in repr(patient()) and PHONE not in repr(consent())
    with pytest.raises(ValidationError) as err:
        PatientFacts.model_validate({"addresses": {"sms": 12125550123}})
    assert "12125550123" not in str(err.value)


def test_inconsistent_decisions_are_refused() -> None:
    with pytest.raises(ValidationError):
        Decision(action="defer", reason="quiet_hours", timezone="UTC")  # no until
    with pytest.raises(ValidationError):
        Decision(action="suppress", reason="quiet_hours", timezone="UTC")


def test_facts_are_read_from_store_rows() -> None:
    from store.consents import Consent, Preference

    row = Consent(
        patient_ref="p1",
        channel="sms",
        address=PHONE,
        purpose="treatment",
        program=PROGRAM,
        method="verbal",
        granted_at=NOW - timedelta(days=1),
        detail_allowed=True,
    )
    facts = ConsentFacts.model_validate(row)
    assert (facts.address, facts.method, facts.in_force(NOW)) == (PHONE, "verbal", True)
    pref = Preference(patient_ref="p1", channel_ranking=["email"], do_not_contact=False)
    prefs = PreferenceFacts.model_validate(pref)
    assert (prefs.channel_ranking, prefs.do_not_contact) == (["email"], False)
    assert run(consents=[facts], prefs=prefs, channels=["sms", "email"]).detail_allowed
