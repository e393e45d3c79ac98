"""Properties of the contact policy (hypothesis): caps hold over random streams of contacts,
and nothing that may not bypass is ever sent in quiet hours or over a cap."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, get_args

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.contact_policy import (
    DEFAULT_RULES,
    Cap,
    Channel,
    ConsentFacts,
    ContactRules,
    Decision,
    MessageFacts,
    PastContact,
    PatientFacts,
    PreferenceFacts,
    decide,
)
from domain.quiet_hours import recipient_zone

PROGRAM = "PRG"
EMAIL = "pat@example.org"
PUSH = "device-1"
PHONES = [
    "+12125550123",  # New York
    "+13125550123",  # Chicago
    "+14155550123",  # Los Angeles
    "+16025550123",  # Phoenix
    "+15555550123",  # demo: default zone
    "+442079460000",  # London
    "+61291234567",  # Sydney
]
ZONES = [
    None,
    "America/New_York",
    "America/Phoenix",
    "Europe/London",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "Not/AZone",
]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
CAPPED = ("sms", "voice", "email", "push")
COUNTED = ("sending", "sent", "delivered", "unknown")
T0 = datetime(2025, 3, 1, tzinfo=UTC)  # spans the March DST changes, north and south
DAY, WEEK = timedelta(days=1), timedelta(days=7)


def address(channel: str, phone: str) -> str:
    return {"email": EMAIL, "push": PUSH}.get(channel, phone)


def allowed(at: datetime, zone_name: str, start: time, end: time) -> bool:
    wall = at.astimezone(recipient_zone(zone_name, None, "UTC")).time()
    return start <= wall < end if start < end else (wall >= start or wall < end)


def bypasses(message: MessageFacts, rules: ContactRules, which: str) -> bool:
    if message.message_class == "promotional" or message.purpose == "marketing":
        return False
    return message.message_class in getattr(rules, which)


channel_lists = st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5, unique=True)


# -- caps over a stream of contacts ------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    gap: timedelta
    purpose: str
    message_class: str
    channels: list[Channel]
    status: str


events = st.builds(
    Event,
    gap=st.one_of(
        st.just(timedelta(0)),
        st.integers(0, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
    ),
    purpose=st.sampled_from(["treatment", "adherence", "marketing"]),
    message_class=st.sampled_from(["clinical", "operational", "promotional", "safety"]),
    channels=channel_lists,
    status=st.sampled_from([*COUNTED, "failed"]),
)


@settings(max_examples=200, deadline=None)
@given(
    phone=st.sampled_from(PHONES),
    timezone=st.sampled_from(ZONES),
    per_day=st.integers(1, 3),
    per_week=st.integers(1, 6),
    ranking=st.lists(st.sampled_from(CHANNELS), max_size=3),
    stream=st.lists(events, min_size=1, max_size=40),
)
def test_caps_hold_over_a_stream_of_contacts(
    phone: str,
    timezone: str | None,
    per_day: int,
    per_week: int,
    ranking: list[str],
    stream: list[Event],
) -> None:
    rules = ContactRules(caps={c: Cap(per_day=per_day, per_week=per_week) for c in CAPPED})
    patient = PatientFacts(
        addresses={c: address(c, phone) for c in CHANNELS if c != "task"}, timezone=timezone
    )
    consents = [
        ConsentFacts(
            channel=c,
            address=address(c, phone),
            purpose=p,
            program=PROGRAM,
            method="written",
            granted_at=T0 - DAY,
        )
        for c in CAPPED
        for p in ("treatment", "adherence", "marketing")
    ]
    prefs = PreferenceFacts(channel_ranking=ranking)
    history: list[PastContact] = []
    capped_sends: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    now = T0
    for i, ev in enumerate(stream):
        now += ev.gap
        message = MessageFacts.model_validate(
            {
                "purpose": ev.purpose,
                "message_class": ev.message_class,
                "channels": ev.channels,
                "dedupe_key": f"m{i}",
                "program": PROGRAM,
            }
        )

        def go(at: datetime, message: MessageFacts = message) -> Decision:
            return decide(patient, consents, prefs, False, history, at, message, rules)

        decision = go(now)
        if decision.action == "defer":
            assert decision.until is not None and decision.until > now
            # The durable timer fires: deciding again then, on the same facts, sends.
            now = decision.until
            decision = go(now)
            assert decision.action == "send", decision.reason
        if decision.action == "suppress":
            # Only a marketing message offered nothing but a task has nowhere to go.
            assert (decision.reason, ev.purpose, ev.channels) == (
                "no_consent",
                "marketing",
                ["task"],
            )
            continue
        channel = decision.channel
        assert channel is not None
        if channel in rules.quiet_hours_channels and not bypasses(
            message, rules, "bypass_quiet_hours"
        ):
            assert allowed(now, decision.timezone, rules.quiet_start, rules.quiet_end)
        history.append(
            PastContact.model_validate(
                {
                    "channel": channel,
                    "purpose": ev.purpose,
                    "status": ev.status,
                    "sent_at": now,
                    "dedupe_key": f"m{i}",
                }
            )
        )
        if (
            channel in CAPPED
            and ev.status in COUNTED
            and not bypasses(message, rules, "bypass_caps")
        ):
            capped_sends[channel, ev.purpose].append(now)

    for times in capped_sends.values():
        # No rolling 24 h holds more than per_day, no rolling 7 days more than per_week.
        assert all(times[i + per_day] - times[i] >= DAY for i in range(len(times) - per_day))
        assert all(times[i + per_week] - times[i] >= WEEK for i in range(len(times) - per_week))


# -- random inputs: never in quiet hours or over a cap unless it may bypass --------------------


def _facts_change(facts: dict[str, Any], until: datetime) -> bool:
    """Would the facts read at `until` differ from those at `now`: a consent starting or
    ending in between, or a contact in flight without `sent_at` (it counts as sent at the
    time of each decision, so it holds its slot until it is given a time)?"""
    now = facts["now"]
    return any(c.in_force(now) != c.in_force(until) for c in facts["consents"]) or any(
        row.sent_at is None and row.status in COUNTED for row in facts["history"]
    )


@st.composite
def situations(draw: st.DrawFn, promotional: bool | None = None) -> dict[str, Any]:
    """Random facts, biased towards a patient who can be reached (a usable consent on some
    allowed channels, recent contacts of the same purpose) so sends and deferrals are common,
    with noise: consents for other addresses, purposes or programs, expired, revoked..."""
    now = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 60)))
    if promotional is None:
        promotional = draw(st.booleans())
    purpose = "marketing" if promotional else draw(st.sampled_from(["treatment", "adherence"]))
    message = MessageFacts.model_validate(
        {
            "purpose": purpose,
            "message_class": "promotional"
            if promotional
            else draw(st.sampled_from(["safety", "clinical", "operational"])),
            "channels": draw(channel_lists),
            "exclude": draw(st.lists(st.sampled_from(CHANNELS), max_size=1)),
            "dedupe_key": draw(st.sampled_from(["z", "z", "z", "a"])),
            "program": PROGRAM,
        }
    )
    phone = draw(st.sampled_from(PHONES))
    # Mostly the allowed channels are on file and have a usable consent (shrinks to that).
    on_file = [c for c in CAPPED if draw(st.integers(0, 4)) != (4 if c in message.channels else 0)]
    patient = PatientFacts(
        addresses={c: address(c, phone) for c in on_file}, timezone=draw(st.sampled_from(ZONES))
    )
    offsets = st.integers(-30 * 24 * 60, 30 * 24 * 60).map(lambda m: now + timedelta(minutes=m))
    usable = [
        ConsentFacts(
            channel=c,
            address=address(c, phone),
            purpose=purpose,
            program=PROGRAM,
            method=draw(st.sampled_from(["written", "enrollment_form", "sms_keyword"])),
            granted_at=now - timedelta(days=draw(st.integers(1, 90))),
            expires_at=draw(st.none() | offsets),
            detail_allowed=draw(st.booleans()),
        )
        for c in on_file
        if draw(st.integers(0, 3)) != 3
    ]
    noise = draw(
        st.lists(
            st.builds(
                ConsentFacts,
                channel=st.sampled_from([*CAPPED, "mail"]),
                address=st.sampled_from([phone, EMAIL, PUSH, "+12125550999"]),
                purpose=st.sampled_from(["treatment", "adherence", "marketing"]),
                program=st.sampled_from([PROGRAM, "OTHER"]),
                status=st.sampled_from(["active", "active", "inactive", "rejected"]),
                method=st.sampled_from(["written", "enrollment_form", "verbal", "sms_keyword"]),
                granted_at=offsets,
                expires_at=st.none() | offsets,
                revoked_at=st.none() | st.none() | offsets,
                detail_allowed=st.booleans(),
            ),
            max_size=4,
        )
    )
    history = draw(
        st.lists(
            st.builds(
                PastContact,
                channel=st.sampled_from([*message.channels, "email"]),
                purpose=st.sampled_from([purpose, purpose, "treatment", "marketing"]),
                status=st.sampled_from(
                    ["planned", "sending", "sent", "delivered", "failed", "deferred", "unknown"]
                ),
                sent_at=st.none()
                | st.integers(0, 8 * 24 * 60).map(lambda m: now - timedelta(minutes=m)),
                dedupe_key=st.sampled_from([None, "a", "b"]),
            ),
            max_size=8,
        )
    )
    hours = st.none() | st.builds(time, st.integers(0, 23), st.sampled_from([0, 30]))
    prefs = draw(
        st.none()
        | st.builds(
            PreferenceFacts,
            channel_ranking=st.lists(st.sampled_from(CHANNELS), max_size=3),
            contact_from=hours,
            contact_until=hours,
        )
    )
    return {
        "patient": patient,
        "consents": draw(st.permutations([*usable, *noise])),
        "preferences": prefs,
        "opted_out": draw(st.integers(0, 9)) == 9,
        "history": history,
        "now": now,
        "message": message,
    }


def assert_lawful(decision: Decision, facts: dict[str, Any], rules: ContactRules) -> None:
    """A send is within the rules' window (and the patient's, for promotional content) and
    under the caps, unless the class may bypass them."""
    message: MessageFacts = facts["message"]
    now: datetime = facts["now"]
    channel = decision.channel
    assert channel is not None
    assert channel not in message.exclude and channel in message.channels
    if message.purpose == "marketing":
        assert channel != "task"
    if channel in rules.quiet_hours_channels and not bypasses(message, rules, "bypass_quiet_hours"):
        prefs: PreferenceFacts | None = facts["preferences"]
        if message.message_class == "promotional" or prefs is None:
            assert allowed(now, decision.timezone, rules.quiet_start, rules.quiet_end)
        if prefs is not None:
            start = prefs.contact_from or rules.quiet_start
            end = prefs.contact_until or rules.quiet_end
            overlap = start < end and max(start, rules.quiet_start) < min(end, rules.quiet_end)
            if start != end and (message.message_class != "promotional" or overlap):
                assert allowed(now, decision.timezone, start, end)
    cap = rules.caps.get(channel)
    if cap is not None and not bypasses(message, rules, "bypass_caps"):
        sent = [
            row.sent_at or now
            for row in facts["history"]
            if row.channel == channel and row.purpose == message.purpose and row.status in COUNTED
        ]
        assert sum(now - DAY < t for t in sent) < cap.per_day
        assert sum(now - WEEK < t for t in sent) < cap.per_week


@settings(max_examples=200, deadline=None)
@given(facts=situations())
def test_nothing_goes_in_quiet_hours_or_over_a_cap_unless_it_may_bypass(
    facts: dict[str, Any],
) -> None:
    rules = DEFAULT_RULES
    decision = decide(**facts)
    event(f"{decision.action} {decision.reason}")
    assert decision == decide(**facts)  # deterministic
    if decision.action == "send":
        assert_lawful(decision, facts, rules)
    elif decision.action == "defer":
        until = decision.until
        assert until is not None and until > facts["now"] and until.utcoffset() == timedelta(0)
        later = decide(**{**facts, "now": until})
        if not _facts_change(facts, until):
            assert later.action == "send", later.reason
        if later.action == "send":
            assert_lawful(later, {**facts, "now": until}, rules)
    else:
        assert decision.channel is None and decision.until is None


@settings(max_examples=200, deadline=None)
@given(facts=situations(promotional=True), hour=st.integers(0, 23))
def test_promotional_content_never_goes_in_quiet_hours(facts: dict[str, Any], hour: int) -> None:
    # Any hour of the local day (in the zone of the record, or the default).
    zone = recipient_zone(facts["patient"].timezone, None, DEFAULT_RULES.default_timezone)
    wall = facts["now"].astimezone(zone).replace(hour=hour, minute=30)
    facts = {**facts, "now": wall.astimezone(UTC)}
    decision = decide(**facts)
    event(f"{decision.action} {decision.reason}")
    if decision.action == "send":
        assert_lawful(decision, facts, DEFAULT_RULES)
        if decision.channel in DEFAULT_RULES.quiet_hours_channels:
            local = facts["now"].astimezone(recipient_zone(decision.timezone, None, "UTC"))
            assert 8 <= local.hour < 20
    elif decision.action == "defer":
        assert decision.until is not None and decision.until > facts["now"]
