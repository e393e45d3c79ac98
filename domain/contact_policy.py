"""The contact policy: may this message go to this patient now, on which channel (pure).

One function, `decide`, holds the messaging law of DOMAIN.md §5 for a message at send time
(consent is checked when a message is sent, not when it was planned). Its inputs are facts
read at send time (patient record, consents, preferences, opt-out, contact history) and the
current instant `now` (an input: no wall clock here; domain/ runs in the workflow sandbox).
The same inputs always give the same `Decision`.

The rules, in order:

1. Erased patient -> suppress `erased`. An opt-out in force (it revokes every channel and
   program of the person until a new opt-in) -> suppress `opted_out`. A do-not-contact
   preference -> suppress `do_not_contact`.
2. The same content for the same reason is never sent twice: a history row with the same
   `dedupe_key` whose status is sending, sent, delivered or unknown -> suppress
   `duplicate_content`.
3. Candidate channels: the template's `channels` in order, minus `exclude` (channels already
   tried and failed); when the patient ranked channels, the ranked ones come first in the
   patient's order, the others keep template order after them. Each candidate needs an
   address on file (else skipped `no_contact`; "task" uses the phone) and, for an automated
   channel, a consent in force at `now` for that channel, that exact address (a changed
   number needs a new consent), purpose and program: status active, not revoked,
   granted_at <= now < expires_at. Marketing needs a written consent (written,
   electronic_signature, enrollment_form), else skipped `no_consent`. A "task" (staff call
   the patient) needs a phone on file but no channel consent, and is never used for
   marketing (skipped `not_for_marketing`).
4. Frequency caps, per person x channel x purpose across all journeys: of the reachable
   channels the first one not over its cap is chosen. A cap counts the history rows of that
   channel and purpose with status sending, sent, delivered or unknown sent within the last
   24 h (`per_day`) or 7 days (`per_week`), rolling windows (a contact counts while
   `now < sent_at + window`). A counted row without `sent_at` (in flight) counts as sent at
   `now`. A channel without a cap in the rules ("task" by default) is uncapped. When every
   reachable channel is over its cap -> defer `frequency_cap` (see "until" below).
5. Quiet hours, for the chosen channel when it is one of `quiet_hours_channels` (sms, voice,
   push: email waits in an inbox, staff work tasks in business hours): local time in the
   recipient's zone (`recipient_zone(patient.timezone, phone, default_timezone)`) must be
   inside the allowed window: the patient's preferred window when set (each bound falls
   back to the rules' one), else the rules' 08:00-20:00. Outside it -> defer `quiet_hours`
   (the chosen channel waits; a lower-ranked one is not used instead). For promotional
   content a patient's window never widens the rules' one (their intersection is used,
   or the rules' window when they do not overlap).
   "until" of a deferral is the earliest instant at which rules 4 and 5, on the same
   facts, send: a slot frees when the oldest counted contact leaves its window, and the
   channel chosen then must be inside its window then (`quiet_until`); so a quiet-hours
   deferral respects the caps at that instant and a cap deferral the quiet hours (the
   later of the two). Deciding again at `until` with the same facts sends.
6. No reachable channel -> suppress: `no_channel_left` when every allowed channel was
   excluded (or none is allowed), else `no_consent` when some channel had an address but no
   usable consent, else `no_contact`.
7. Classes in `bypass_caps` / `bypass_quiet_hours` (safety, by default) skip rule 4 / rule 5.
   Promotional content never does: the rules refuse "promotional" in either set, and
   `decide` gives no bypass to a promotional class or a marketing purpose.

Reasons are short codes; nothing here puts patient data in a reason or an error message
(addresses are left out of reprs and validation errors hide their input).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol, get_args
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.quiet_hours import quiet_until, recipient_zone, zone_or_none

Channel = Literal["sms", "email", "voice", "push", "task"]
Purpose = Literal["treatment", "adherence", "marketing"]
MessageClass = Literal["safety", "clinical", "operational", "promotional"]
ContactStatus = Literal[
    "planned", "sending", "sent", "delivered", "failed", "deferred", "suppressed", "unknown"
]
Action = Literal["send", "defer", "suppress"]
SuppressReason = Literal[
    "erased",
    "opted_out",
    "do_not_contact",
    "no_contact",
    "no_consent",
    "duplicate_content",
    "no_channel_left",
]
DeferReason = Literal["quiet_hours", "frequency_cap"]
Verdict = Literal["ok", "skipped"]

CHANNELS: tuple[Channel, ...] = get_args(Channel)
# History statuses that count as contact made (for duplicates and caps).
COUNTED_STATUSES: frozenset[str] = frozenset({"sending", "sent", "delivered", "unknown"})
# Marketing needs written consent (DOMAIN §5.1); the store's consent queries use this set.
WRITTEN_METHODS: frozenset[str] = frozenset({"written", "electronic_signature", "enrollment_form"})
# Channels whose address is the patient's phone.
PHONE_CHANNELS: frozenset[str] = frozenset({"sms", "voice", "task"})
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


class _Facts(BaseModel):
    """Facts read from the stores: built from a row directly (`model_validate(row)`), other
    attributes of the row ignored."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", from_attributes=True, hide_input_in_errors=True
    )


class _Strict(BaseModel):
    """What the caller writes (message, rules) and what `decide` answers: no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class PatientFacts(_Facts):
    """From the patient record, read at send time."""

    addresses: dict[str, str | None] = Field(
        default_factory=dict,
        repr=False,
        description="channel -> address on file (sms/voice: E.164 phone, email: address); "
        '"task" uses the phone (PHI).',
    )
    timezone: str | None = Field(None, description="IANA zone from the store.")
    erased: bool = False


class ConsentFacts(_Facts):
    """One consent row (any status: `decide` checks it is in force at `now`).

    channel / purpose / status / method are plain strings: the store knows more of them
    (e.g. "mail") than this policy sends on; unknown ones simply never match."""

    channel: str
    address: str | None = Field(None, repr=False, description="The address it covers (PHI).")
    purpose: str
    program: str
    status: str = "active"
    method: str = "enrollment_form"
    granted_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None
    detail_allowed: bool = False

    def in_force(self, at: datetime) -> bool:
        return (
            self.status == "active"
            and self.revoked_at is None
            and self.granted_at <= at
            and (self.expires_at is None or at < self.expires_at)
        )


class PreferenceFacts(_Facts):
    """The patient's preferences in force."""

    channel_ranking: list[str] = Field(default_factory=list)
    contact_from: time | None = Field(None, description="Allowed window start, local.")
    contact_until: time | None = Field(None, description="Allowed window end, local.")
    do_not_contact: bool = False


class PastContact(_Facts):
    """One row of the patient's contact history (all journeys)."""

    channel: str
    purpose: str
    status: ContactStatus
    sent_at: AwareDatetime | None = None
    dedupe_key: str | None = None

    @classmethod
    def of(cls, row: LedgerRow) -> PastContact:
        """A ledger row as history (a fallback's `key#n` counts as its content's key)."""
        key = row.dedupe_key.split("#", 1)[0] if row.dedupe_key else None
        return cls(channel=row.channel, purpose=row.purpose, status=row.status,
                   sent_at=row.sent_at, dedupe_key=key)  # fmt: skip


class LedgerRow(Protocol):
    """What history reads from a ledger row (the store's, or the simulator's)."""

    @property
    def channel(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def dedupe_key(self) -> str | None: ...


class MessageFacts(_Strict):
    """What is being sent."""

    purpose: Purpose
    message_class: MessageClass
    channels: list[Channel] = Field(description="Allowed, in order of preference (template's).")
    dedupe_key: str = Field(description="Same content for the same reason.")
    program: str
    exclude: list[Channel] = Field(
        default_factory=list, description="Channels already tried and failed: never chosen."
    )


class Cap(_Strict):
    per_day: int = Field(ge=1, description="At most this many in any rolling 24 h.")
    per_week: int = Field(ge=1, description="At most this many in any rolling 7 days.")


def _default_caps() -> dict[Channel, Cap]:
    return {c: Cap(per_day=1, per_week=3) for c in ("sms", "voice", "email", "push")}


class ContactRules(_Strict):
    """Configuration of `decide`, with the defaults of DOMAIN.md §5."""

    quiet_start: time = Field(time(8, 0), description="Allowed window start, local time.")
    quiet_end: time = Field(time(20, 0), description="Allowed window end (exclusive).")
    caps: dict[Channel, Cap] = Field(
        default_factory=_default_caps,
        description="Per person x channel x purpose; a channel not listed is uncapped.",
    )
    quiet_hours_channels: frozenset[Channel] = frozenset({"sms", "voice", "push"})
    bypass_quiet_hours: frozenset[MessageClass] = frozenset({"safety"})
    bypass_caps: frozenset[MessageClass] = frozenset({"safety"})
    default_timezone: str = Field(
        "America/New_York", description="When neither the store nor the number gives one."
    )

    @field_validator("bypass_quiet_hours", "bypass_caps")
    @classmethod
    def _never_promotional(cls, value: frozenset[str]) -> frozenset[str]:
        if "promotional" in value:
            raise ValueError("promotional messages can never bypass quiet hours or caps")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        if zone_or_none(value) is None:
            raise ValueError("default_timezone is not an IANA time zone")
        return value

    @model_validator(mode="after")
    def _window(self) -> ContactRules:
        if self.quiet_start == self.quiet_end:
            raise ValueError("quiet_start and quiet_end must differ")
        return self


DEFAULT_RULES = ContactRules()


class ChannelCheck(_Strict):
    """Why a channel was or was not used.

    reason: None (used), quiet_hours (chosen, deferred), no_contact, no_consent,
    not_for_marketing, frequency_cap, lower_rank (reachable, a better one was used),
    excluded (already tried)."""

    channel: Channel
    verdict: Verdict
    reason: str | None = None


class Decision(_Strict):
    action: Action
    channel: Channel | None = Field(None, description="send: the channel; defer: the one due.")
    address: str | None = Field(None, repr=False, description="The address to use (PHI).")
    until: AwareDatetime | None = Field(None, description="defer: earliest instant (UTC).")
    reason: SuppressReason | DeferReason | None = None
    detail_allowed: bool = Field(False, description="The consent used allows naming the drug.")
    timezone: str = Field(description="The zone the rules used (for the operator view).")
    checks: list[ChannelCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.action == "send":
            ok = self.channel is not None and self.reason is None and self.until is None
        elif self.action == "defer":
            ok = self.until is not None and self.reason in get_args(DeferReason)
        else:
            ok = self.reason in get_args(SuppressReason) and self.until is None
        if not ok:
            raise ValueError(f"inconsistent {self.action} decision")
        return self


@dataclass(frozen=True)
class _Route:
    """A reachable channel: where it goes, the consent's detail flag, the recipient's zone,
    when a slot is free on it and the allowed local window (None: no quiet hours)."""

    channel: Channel
    address: str
    detail_allowed: bool
    zone: ZoneInfo
    cap_free: datetime
    window: tuple[time, time] | None

    def ready(self, at: datetime) -> datetime:
        """The first instant >= `at` (and >= cap_free) inside the allowed window."""
        at = max(at, self.cap_free)
        if self.window is None:
            return at
        return quiet_until(at, self.zone, *self.window) or at


def decide(
    patient: PatientFacts,
    consents: Sequence[ConsentFacts],
    preferences: PreferenceFacts | None,
    opted_out: bool,
    history: Sequence[PastContact],
    now: datetime,
    message: MessageFacts,
    rules: ContactRules = DEFAULT_RULES,
) -> Decision:
    """Send, defer or suppress `message` to `patient` at `now` (aware); see the module doc."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    phone = _phone(patient)
    zone_name = recipient_zone(patient.timezone, phone, rules.default_timezone).key

    def suppress(reason: SuppressReason, checks: list[ChannelCheck] | None = None) -> Decision:
        return Decision(action="suppress", reason=reason, timezone=zone_name, checks=checks or [])

    # 1. Who may not be contacted at all.
    if patient.erased:
        return suppress("erased")
    if opted_out:
        return suppress("opted_out")
    if preferences is not None and preferences.do_not_contact:
        return suppress("do_not_contact")
    # 2. Never the same content twice for the same reason.
    if any(
        row.dedupe_key == message.dedupe_key and row.status in COUNTED_STATUSES for row in history
    ):
        return suppress("duplicate_content")

    # 3. Candidates, and which of them can reach the patient.
    candidates, excluded = _candidates(message, preferences)
    promotional = message.message_class == "promotional" or message.purpose == "marketing"
    bypass_caps = not promotional and message.message_class in rules.bypass_caps
    bypass_quiet = not promotional and message.message_class in rules.bypass_quiet_hours
    window = _window(preferences, rules, promotional)

    unreachable: dict[Channel, str] = {}
    routes: list[_Route] = []
    for channel in candidates:
        address, detail, why_not = _reach(channel, patient, phone, consents, message, now)
        if why_not is not None or address is None:
            unreachable[channel] = why_not or "no_contact"
            continue
        cap = None if bypass_caps else rules.caps.get(channel)
        cap_free = now if cap is None else _cap_free(history, channel, message.purpose, cap, now)
        number = address if channel in PHONE_CHANNELS else phone
        zone = recipient_zone(patient.timezone, number, rules.default_timezone)
        quiet = channel in rules.quiet_hours_channels and not bypass_quiet
        routes.append(_Route(channel, address, detail, zone, cap_free, window if quiet else None))

    # 6. Nothing reachable: the most telling reason.
    if not routes:
        checks = _checks(candidates, excluded, unreachable, routes, None, now)
        if not candidates:
            return suppress("no_channel_left", checks)
        no_consent = any(r in ("no_consent", "not_for_marketing") for r in unreachable.values())
        return suppress("no_consent" if no_consent else "no_contact", checks)

    # 4./5. The first channel under its cap; it goes now unless it is quiet hours there.
    chosen = _chosen(routes, now)
    due, until = _earliest_send(routes, now)
    checks = _checks(candidates, excluded, unreachable, routes, chosen, now)
    if until <= now:
        return Decision(
            action="send",
            channel=due.channel,
            address=due.address,
            detail_allowed=due.detail_allowed,
            timezone=due.zone.key,
            checks=checks,
        )
    return Decision(
        action="defer",
        channel=due.channel,
        address=due.address,
        until=until,
        reason="quiet_hours" if chosen is not None else "frequency_cap",
        detail_allowed=due.detail_allowed,
        timezone=due.zone.key,
        checks=checks,
    )


def _chosen(routes: Sequence[_Route], at: datetime) -> _Route | None:
    """The first reachable channel not over its cap at `at`."""
    return next((r for r in routes if r.cap_free <= at), None)


def _earliest_send(routes: Sequence[_Route], now: datetime) -> tuple[_Route, datetime]:
    """The earliest instant >= now at which rules 4 and 5 let the message go, and on which
    channel: the chosen channel changes only when a cap frees, so between two such instants
    it is fixed and goes at its first allowed local time, if that comes before the next."""
    frees = sorted({r.cap_free for r in routes})  # all >= now
    for k, free in enumerate(frees):
        route = _chosen(routes, free)
        assert route is not None
        ready = route.ready(free)
        if k + 1 == len(frees) or ready < frees[k + 1]:
            return route, ready
    raise AssertionError("unreachable")  # pragma: no cover (the last interval is open)


def _phone(patient: PatientFacts) -> str | None:
    """The patient's phone on file (for a task, and for the zone of the number)."""
    addresses = patient.addresses
    return addresses.get("sms") or addresses.get("voice") or addresses.get("task") or None


def _candidates(
    message: MessageFacts, preferences: PreferenceFacts | None
) -> tuple[list[Channel], list[Channel]]:
    """(candidates in the order tried, excluded channels in template order)."""
    allowed = list(dict.fromkeys(message.channels))
    excluded = [c for c in allowed if c in message.exclude]
    remaining = [c for c in allowed if c not in message.exclude]
    ranking = preferences.channel_ranking if preferences is not None else []
    rank = {c: i for i, c in reversed(list(enumerate(ranking)))}  # first mention wins
    # A stable sort: ranked channels in the patient's order, the rest in template order.
    remaining.sort(key=lambda c: rank.get(c, len(ranking)))
    return remaining, excluded


def _window(
    preferences: PreferenceFacts | None, rules: ContactRules, promotional: bool
) -> tuple[time, time]:
    """The allowed local window: the patient's (each bound defaulting to the rules'), else
    the rules'; for promotional content never wider than the rules'."""
    start, end = rules.quiet_start, rules.quiet_end
    if preferences is None:
        return start, end
    p_start = preferences.contact_from or start
    p_end = preferences.contact_until or end
    if p_start == p_end:
        return start, end  # an empty window on file: the rules' one
    if not promotional:
        return p_start, p_end
    if start < end and p_start < p_end and max(start, p_start) < min(end, p_end):
        return max(start, p_start), min(end, p_end)
    return start, end


def _reach(
    channel: Channel,
    patient: PatientFacts,
    phone: str | None,
    consents: Sequence[ConsentFacts],
    message: MessageFacts,
    now: datetime,
) -> tuple[str | None, bool, str | None]:
    """(address, detail_allowed, None) when the channel can reach the patient, else
    (None, False, why not)."""
    if channel == "task":
        if message.purpose == "marketing":
            return None, False, "not_for_marketing"
        address = patient.addresses.get("task") or phone
        return (address, False, None) if address else (None, False, "no_contact")
    address = patient.addresses.get(channel)
    if not address:
        return None, False, "no_contact"
    consent = _consent(consents, channel, address, message, now)
    if consent is None:
        return None, False, "no_consent"
    return address, consent.detail_allowed, None


def _consent(
    consents: Iterable[ConsentFacts],
    channel: str,
    address: str,
    message: MessageFacts,
    now: datetime,
) -> ConsentFacts | None:
    """The newest consent in force covering this channel, address, purpose and program."""
    matching = [
        (c.granted_at, i, c)
        for i, c in enumerate(consents)
        if c.channel == channel
        and c.address == address
        and c.purpose == message.purpose
        and c.program == message.program
        and c.in_force(now)
        and (message.purpose != "marketing" or c.method in WRITTEN_METHODS)
    ]
    return max(matching, key=lambda m: (m[0], m[1]))[2] if matching else None


def _cap_free(
    history: Iterable[PastContact], channel: str, purpose: str, cap: Cap, now: datetime
) -> datetime:
    """The earliest instant >= now at which one more contact on this channel for this
    purpose keeps both rolling windows within the cap."""
    times = [
        row.sent_at or now
        for row in history
        if row.channel == channel and row.purpose == purpose and row.status in COUNTED_STATUSES
    ]
    return max(now, _slot(times, now, DAY, cap.per_day), _slot(times, now, WEEK, cap.per_week))


def _slot(times: Sequence[datetime], now: datetime, window: timedelta, limit: int) -> datetime:
    """When fewer than `limit` of `times` lie in the window ending then (`t < at + window`)."""
    inside = sorted(t for t in times if now < t + window)
    if len(inside) < limit:
        return now
    return inside[len(inside) - limit] + window


def _checks(
    candidates: list[Channel],
    excluded: list[Channel],
    unreachable: dict[Channel, str],
    routes: list[_Route],
    chosen: _Route | None,
    now: datetime,
) -> list[ChannelCheck]:
    by_channel = {r.channel: r for r in routes}
    checks: list[ChannelCheck] = []
    for channel in candidates:
        route = by_channel.get(channel)
        if route is None:
            checks.append(ChannelCheck(channel=channel, verdict="skipped",
                                       reason=unreachable[channel]))  # fmt: skip
        elif route is chosen:
            reason = None if route.ready(now) <= now else "quiet_hours"
            checks.append(ChannelCheck(channel=channel, verdict="ok", reason=reason))
        elif route.cap_free > now:
            checks.append(ChannelCheck(channel=channel, verdict="skipped", reason="frequency_cap"))
        else:
            checks.append(ChannelCheck(channel=channel, verdict="skipped", reason="lower_rank"))
    checks += [ChannelCheck(channel=c, verdict="skipped", reason="excluded") for c in excluded]
    return checks
