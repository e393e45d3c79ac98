"""Cohort scenarios: distributions of partner and patient behaviour, sampled per patient.

A `CohortScenario` (a YAML file, see `simulate/scenarios/`) says how partners and
patients behave across a cohort: the share needing PA, PA outcomes and turnaround,
appeals, consent, claim rejects, pharmacy fill / ship / delivery times, outages, and
patient replies, opt-outs, refill lateness, drop-out, time zones and plan types, and
the hub's people: how long a task waits for the person it landed on (by role), the share
nobody works, and the days from injection training to the first dose.

`sample(scenario, n, seed, months)` draws one `PatientScenario` per patient: concrete
numbers only. Patient i depends on (seed, i) alone, never on n or on the process (no
`hash()`), and each aspect (PA, consent, refills, ...) draws from its own stream, so a
change to one distribution leaves the others' draws as they were: two scenarios sampled
with the same seed differ only where their distributions do (common random numbers).

A `PatientScenario` is expressible as the sandbox's per-patient `Scenario`
(`sandbox_scenario`), so the virtual-clock simulator and the real sandbox can be driven
with the same sampled patient.

Durations are calendar days (DOMAIN.md gives some in business days: 5 business days are
about 7 calendar days). Distributions, by `dist`:

    {dist: fixed, value: 4}
    {dist: uniform, low: 1, high: 2}
    {dist: normal, mean: 0, sd: 2}
    {dist: lognormal, median: 5, p90: 10}
    {dist: mixture, parts: [{weight: 0.8, of: {...}}, {weight: 0.2, of: {...}}]}

each with optional `min` / `max` bounds that clamp a sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Annotated, Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sandbox.scenario import PaScenario, RejectCode, Scenario

# The standard normal's 90th percentile: a lognormal's p90 = median * exp(Z90 * sigma).
Z90 = 1.2815515655446004
DAYS_PER_MONTH = 365.25 / 12
MAX_MONTHS = 120
# Claim rejects per patient stop here (the sandbox's list holds at most 20).
MAX_CLAIM_REJECTS = 20

PlanType = Literal["commercial", "medicare", "medicaid"]
ConsentOutcome = Literal["sign", "decline", "never"]
DaysSupply = Literal[28, 30, 84, 90]
Service = Literal["payer", "pharmacy", "consent", "copay"]
# The roles templates open human tasks for (and escalate to); "default" stands for any
# role a scenario does not name.
Role = Literal[
    "patient_navigator",
    "reimbursement_specialist",
    "case_manager",
    "prescriber_office",
    "nurse_educator",
    "program_lead",
]
ROLES: tuple[Role, ...] = get_args(Role)
DEFAULT_ROLE = "default"
# Each role's k-th task of a patient has its own draw; past this many a role's tasks
# take the draws again from the first (a loop that long is itself the finding).
TASKS_PER_ROLE = 16

K = TypeVar("K")


class ScenarioError(ValueError):
    """A scenario file that does not load: names the file and the field."""


# ---------------------------------------------------------------- distributions


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = Field(None, description="Clamp: a sample below this is this.")
    max: float | None = Field(None, description="Clamp: a sample above this is this.")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> _Dist:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def _draw(self, rng: Random) -> float:
        raise NotImplementedError

    def _lowest(self) -> float:
        """The lowest value the unclamped distribution can give."""
        raise NotImplementedError

    def sample(self, rng: Random) -> float:
        value = self._draw(rng)
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value

    def lowest(self) -> float:
        low = self._lowest()
        return low if self.min is None else max(low, self.min)


class Fixed(_Dist):
    dist: Literal["fixed"]
    value: float

    def _draw(self, rng: Random) -> float:
        return self.value

    def _lowest(self) -> float:
        return self.value


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _low_le_high(self) -> Uniform:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self

    def _draw(self, rng: Random) -> float:
        return rng.uniform(self.low, self.high)

    def _lowest(self) -> float:
        return self.low


class Normal(_Dist):
    dist: Literal["normal"]
    mean: float
    sd: float = Field(ge=0)

    def _draw(self, rng: Random) -> float:
        return rng.gauss(self.mean, self.sd)

    def _lowest(self) -> float:
        return self.mean if self.sd == 0 else -math.inf


class LogNormal(_Dist):
    """Right-skewed, positive: given by its median and 90th percentile."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    p90: float = Field(gt=0, description="90th percentile; greater than the median.")

    @model_validator(mode="after")
    def _p90_above_median(self) -> LogNormal:
        if self.p90 <= self.median:
            raise ValueError("p90 must be greater than median")
        return self

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / Z90

    def _draw(self, rng: Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)

    def _lowest(self) -> float:
        return 0.0


class MixturePart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(ge=0)
    of: Duration


class Mixture(_Dist):
    """A weighted choice of distributions, e.g. mostly on time with a late tail."""

    dist: Literal["mixture"]
    parts: list[MixturePart] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _weights_sum(self) -> Mixture:
        if sum(part.weight for part in self.parts) <= 0:
            raise ValueError("the parts' weights must sum to more than 0")
        return self

    def _draw(self, rng: Random) -> float:
        total = sum(part.weight for part in self.parts)
        pick = rng.random() * total
        for part in self.parts:
            pick -= part.weight
            if pick < 0:
                return part.of.sample(rng)
        return self.parts[-1].of.sample(rng)

    def _lowest(self) -> float:
        return min(part.of.lowest() for part in self.parts if part.weight > 0)


Duration = Annotated[
    Fixed | Uniform | Normal | LogNormal | Mixture,
    Field(discriminator="dist"),
]
MixturePart.model_rebuild()


def _non_negative(dist: _Dist) -> _Dist:
    if dist.lowest() < 0:
        raise ValueError("a duration must not go below 0 (set min: 0)")
    return dist


# A distribution of days that never goes below 0 (a duration or a count).
NonNegative = Annotated[Duration, AfterValidator(_non_negative)]


def _fixed(value: float) -> Fixed:
    return Fixed(dist="fixed", value=value)


# ---------------------------------------------------------------- weights


def _positive_total(weights: Mapping[Any, float]) -> Mapping[Any, float]:
    if sum(weights.values()) <= 0:
        raise ValueError("the weights must sum to more than 0")
    return weights


def _known_zones(weights: Mapping[str, float]) -> Mapping[str, float]:
    for zone in weights:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {zone!r}") from None
    return weights


Share = Annotated[float, Field(ge=0, le=1)]
Weight = Annotated[float, Field(ge=0)]


_Total = AfterValidator(_positive_total)
PlanWeights = Annotated[dict[PlanType, Weight], _Total]
ZoneWeights = Annotated[dict[str, Weight], _Total, AfterValidator(_known_zones)]
SupplyWeights = Annotated[dict[DaysSupply, Weight], _Total]
PaWeights = Annotated[dict[PaScenario, Weight], _Total]
ConsentWeights = Annotated[dict[ConsentOutcome, Weight], _Total]


def _str_keys(value: object) -> object:
    # YAML reads an unquoted 75 as an int; an NCPDP code is a string.
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


RejectWeights = Annotated[dict[RejectCode, Weight], BeforeValidator(_str_keys), _Total]


def _has_default(hours: Mapping[str, _Dist]) -> Mapping[str, _Dist]:
    if DEFAULT_ROLE not in hours:
        raise ValueError(f"name a {DEFAULT_ROLE!r} distribution (any role not named)")
    return hours


RoleKey = Role | Literal["default"]
TaskHours = Annotated[dict[RoleKey, NonNegative], AfterValidator(_has_default)]


def choose(rng: Random, weights: Mapping[K, float]) -> K:
    """A weighted choice, independent of the order the file listed the keys in."""
    keys = sorted(weights, key=str)
    total = sum(weights[k] for k in keys)
    pick = rng.random() * total
    for key in keys:
        pick -= weights[key]
        if pick < 0 and weights[key] > 0:
            return key
    return next(k for k in reversed(keys) if weights[k] > 0)


# ---------------------------------------------------------------- the cohort scenario


def _all_commercial() -> dict[PlanType, float]:
    return {"commercial": 1.0}


def _all_28_days() -> dict[DaysSupply, float]:
    return {28: 1.0}


def _all_approved() -> dict[PaScenario, float]:
    return {"approve": 1.0}


def _all_sign() -> dict[ConsentOutcome, float]:
    return {"sign": 1.0}


def _same_day_tasks() -> dict[RoleKey, Fixed | Uniform | Normal | LogNormal | Mixture]:
    return {"default": LogNormal(dist="lognormal", median=8.0, p90=24.0)}


class CohortScenario(BaseModel):
    """How partners and patients behave across a cohort (one YAML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field("", description="What the scenario models.")

    # who the patients are
    plan_types: PlanWeights = Field(
        default_factory=_all_commercial,
        description="Weights over the coverage's plan type (copay cards: commercial only).",
    )
    timezones: ZoneWeights = Field(
        default_factory=lambda: {"America/New_York": 1.0},
        description="Weights over IANA time zones (quiet hours, due dates).",
    )
    days_supply: SupplyWeights = Field(
        default_factory=_all_28_days,
        description="Weights over the days supply of each fill (28/30/84/90).",
    )

    # payer
    pa_required: Share = Field(0.85, description="Share of patients whose plan needs a PA.")
    pa_outcomes: PaWeights = Field(
        default_factory=_all_approved,
        description="Weights over the PA's course (the sandbox's `pa` values), "
        "for patients needing a PA.",
    )
    pa_turnaround_days: NonNegative = Field(
        default_factory=lambda: _fixed(10.0),
        description="Days from submission to the decision of a pended PA (approve and deny "
        "outcomes are decided at once; pend_info_* wait this again after the update).",
    )
    appeal_days: NonNegative = Field(
        default_factory=lambda: _fixed(10.0),
        description="Days from the appeal to its decision.",
    )
    outage_rate: Share = Field(
        0.0, description="Share of patients for whom `outage_service` answers 503 once."
    )
    outage_service: Service = Field("payer", description="The service that has the outage.")

    # consent
    consent: ConsentWeights = Field(
        default_factory=_all_sign,
        description="Weights over the patient's answer to the consent request.",
    )
    consent_days: NonNegative = Field(
        default_factory=lambda: _fixed(1.0),
        description="Days from the consent request to the signature or decline.",
    )

    # pharmacy
    claim_reject_rate: Share = Field(
        0.0,
        description="Chance that a claim is rejected: the first claim, and again each "
        "claim after a reject (a geometric count, at most `claim_reject_max`).",
    )
    claim_reject_codes: RejectWeights = Field(
        default_factory=lambda: {"75": 1.0},
        description="Weights over NCPDP reject codes (75 PA required, 70 not covered, "
        "79 refill too soon, 76 plan limits exceeded).",
    )
    claim_reject_max: int = Field(3, ge=0, le=MAX_CLAIM_REJECTS)
    fill_days: NonNegative = Field(
        default_factory=lambda: _fixed(4.0),
        description="Days from the SP referral to the fill (intake, claim, fill).",
    )
    ship_days: NonNegative = Field(
        default_factory=lambda: _fixed(1.0), description="Days from the fill to shipment."
    )
    deliver_days: NonNegative = Field(
        default_factory=lambda: _fixed(1.0), description="Days from shipment to delivery."
    )

    # patient behaviour
    reply_rate: Share = Field(0.6, description="Share of patients who reply to outreach.")
    reply_hours: NonNegative = Field(
        default_factory=lambda: _fixed(2.0),
        description="Hours from an outreach message to a replying patient's reply.",
    )
    opt_out_rate: Share = Field(0.0, description="Share of patients who opt out (STOP).")
    opt_out_day: NonNegative = Field(
        default_factory=lambda: _fixed(30.0),
        description="Day of the journey on which an opting-out patient opts out.",
    )
    refill_lateness_days: Duration = Field(
        default_factory=lambda: _fixed(0.0),
        description="Days past run-out of each refill (negative: early), rounded to days.",
    )
    dropout_rate: Share = Field(
        0.0, description="Share of patients who stop refilling after some fill."
    )
    dropout_after_fills: NonNegative = Field(
        default_factory=lambda: _fixed(3.0),
        description="Fills a dropping-out patient makes before stopping (rounded, at least 1).",
    )

    # hub staff, prescriber offices and the first dose
    task_hours: TaskHours = Field(
        default_factory=_same_day_tasks,
        description="Hours (wall clock) from a human task opening to its completion by "
        "the role it was opened for; `default` for any role not named.",
    )
    task_unworked_rate: Share = Field(
        0.0,
        description="Share of tasks nobody ever works: left to the SLA's escalations and "
        "the task's give-up, if it has one.",
    )
    first_dose_days: NonNegative = Field(
        default_factory=lambda: _fixed(2.0),
        description="Days from the injection training (the onboarding task done) to the "
        "first dose confirmed.",
    )
    first_dose_never_rate: Share = Field(
        0.0, description="Share of trained patients whose first dose is never confirmed."
    )


# ---------------------------------------------------------------- one patient


@dataclass(frozen=True)
class PatientScenario:
    """Everything sampled for one patient: concrete numbers, no distributions."""

    index: int
    seed: str
    plan_type: PlanType
    timezone: str
    days_supply: int
    pa_required: bool
    pa: PaScenario  # "approve" when no PA is needed (never asked)
    pa_turnaround_days: float
    appeal_days: float
    outage: bool
    outage_service: Service
    consent: ConsentOutcome
    consent_days: float
    claim_rejects: tuple[str, ...]
    fill_days: float
    ship_days: float
    deliver_days: float
    replies: bool
    reply_hours: float
    opts_out: bool
    opt_out_day: int | None
    dropout_after_fills: int | None  # None: keeps refilling to the horizon
    refill_days: tuple[int, ...]  # day offsets of each dispense from the refill start
    # Per role (ROLES, then "default"): hours from its k-th task opening to completion,
    # None: never worked (TASKS_PER_ROLE each; see `task_hours_for`).
    task_hours: tuple[tuple[str, tuple[float | None, ...]], ...]
    first_dose_days: float | None  # after the training; None: never confirmed

    def task_hours_for(self, role: str, k: int) -> float | None:
        """Hours until the `k`-th (from 0) task of `role` is completed; None: never.
        A role the scenario does not know takes the "default" draws."""
        by_role = dict(self.task_hours)
        draws = by_role.get(role) or by_role.get(DEFAULT_ROLE) or ()
        return draws[k % len(draws)] if draws else None

    def sandbox_scenario(
        self, seconds_per_day: float, *, outage_seconds: float = 0.5
    ) -> dict[str, Any]:
        """The sandbox `Scenario` JSON for this patient, a day lasting `seconds_per_day`
        real seconds. The outage lasts `outage_seconds` from the first call: less than the
        partner activities' first retry interval (1 s), so exactly one call gets the 503.
        Replies, opt-outs, the time zone, tasks and the first dose are not the partners':
        they are not in it."""
        seconds = seconds_per_day
        scenario: dict[str, Any] = {
            "pa_required": self.pa_required,
            "plan_type": self.plan_type,
            "pa": self.pa,
            "pend_seconds": self.pa_turnaround_days * seconds,
            "appeal_pend_seconds": self.appeal_days * seconds,
            "consent": self.consent,
            "consent_after_seconds": self.consent_days * seconds,
            "claim_rejects": list(self.claim_rejects),
            "fill_after_seconds": self.fill_days * seconds,
            "ship_after_seconds": self.ship_days * seconds,
            "deliver_after_seconds": self.deliver_days * seconds,
            "days_supply": self.days_supply,
            "refill_fills": [
                {"day": day, "days_supply": self.days_supply} for day in self.refill_days
            ],
            "refill_day_seconds": seconds,
        }
        if self.outage:
            scenario["outage"] = {
                "service": self.outage_service,
                "seconds": outage_seconds,
                "status": 503,
            }
        return scenario

    def sandbox(self, seconds_per_day: float) -> Scenario:
        """`sandbox_scenario`, validated."""
        return Scenario.model_validate(self.sandbox_scenario(seconds_per_day))


def _stream(seed: object, index: int, aspect: str) -> Random:
    # A str seed goes through SHA-512: the same in every process, unlike hash().
    return Random(f"{seed}:{index}:{aspect}")


def _refill_days(
    scenario: CohortScenario, rng: Random, days_supply: int, horizon: int, stop_after: int | None
) -> tuple[int, ...]:
    days = [0]
    while stop_after is None or len(days) < stop_after:
        late = round(scenario.refill_lateness_days.sample(rng))
        day = days[-1] + max(days_supply + late, 1)
        if day >= horizon:
            break
        days.append(day)
    return tuple(days)


def _task_draws(s: CohortScenario, rng: Random, role: str) -> tuple[float | None, ...]:
    """A role's task completions: both numbers drawn for every task, so a change of the
    unworked rate leaves the hours as they were (and the other way round)."""
    by_role: dict[str, _Dist] = {str(k): v for k, v in s.task_hours.items()}
    dist = by_role.get(role) or by_role[DEFAULT_ROLE]
    draws: list[float | None] = []
    for _ in range(TASKS_PER_ROLE):
        unworked = rng.random() < s.task_unworked_rate
        hours = dist.sample(rng)
        draws.append(None if unworked else hours)
    return tuple(draws)


def sample_patient(
    scenario: CohortScenario, seed: object, index: int, months: float
) -> PatientScenario:
    """Patient `index` of the cohort sampled with `seed`: the same whatever the cohort size."""
    if not 0 < months <= MAX_MONTHS:
        raise ValueError(f"months must be in (0, {MAX_MONTHS}]")
    s = scenario

    who = _stream(seed, index, "who")
    plan_type = choose(who, s.plan_types)
    timezone = choose(who, s.timezones)
    days_supply = choose(who, s.days_supply)

    payer = _stream(seed, index, "payer")
    pa_required = payer.random() < s.pa_required
    pa: PaScenario = choose(payer, s.pa_outcomes) if pa_required else "approve"
    pa_turnaround = s.pa_turnaround_days.sample(payer)
    appeal = s.appeal_days.sample(payer)

    outage = _stream(seed, index, "outage").random() < s.outage_rate

    consent_rng = _stream(seed, index, "consent")
    consent = choose(consent_rng, s.consent)
    consent_days = s.consent_days.sample(consent_rng)

    claims = _stream(seed, index, "claims")
    rejects: list[str] = []
    while len(rejects) < s.claim_reject_max and claims.random() < s.claim_reject_rate:
        rejects.append(choose(claims, s.claim_reject_codes))

    pharmacy = _stream(seed, index, "pharmacy")
    fill, ship, deliver = (d.sample(pharmacy) for d in (s.fill_days, s.ship_days, s.deliver_days))

    talk = _stream(seed, index, "replies")
    replies = talk.random() < s.reply_rate
    reply_hours = s.reply_hours.sample(talk)
    opt = _stream(seed, index, "opt_out")
    opts_out = opt.random() < s.opt_out_rate
    opt_out_day = round(s.opt_out_day.sample(opt))

    refills = _stream(seed, index, "refills")
    drops = refills.random() < s.dropout_rate
    stop_after = max(round(s.dropout_after_fills.sample(refills)), 1)
    horizon = max(round(months * DAYS_PER_MONTH), 1)
    refill_days = _refill_days(s, refills, days_supply, horizon, stop_after if drops else None)

    task_hours = tuple(
        (role, _task_draws(s, _stream(seed, index, f"tasks:{role}"), role))
        for role in (*ROLES, DEFAULT_ROLE)
    )
    dose = _stream(seed, index, "first_dose")
    never_doses = dose.random() < s.first_dose_never_rate
    first_dose_days = s.first_dose_days.sample(dose)

    return PatientScenario(
        index=index,
        seed=str(seed),
        plan_type=plan_type,
        timezone=timezone,
        days_supply=days_supply,
        pa_required=pa_required,
        pa=pa,
        pa_turnaround_days=pa_turnaround,
        appeal_days=appeal,
        outage=outage,
        outage_service=s.outage_service,
        consent=consent,
        consent_days=consent_days,
        claim_rejects=tuple(rejects),
        fill_days=fill,
        ship_days=ship,
        deliver_days=deliver,
        replies=replies,
        reply_hours=reply_hours if replies else 0.0,
        opts_out=opts_out,
        opt_out_day=opt_out_day if opts_out else None,
        dropout_after_fills=stop_after if drops else None,
        refill_days=refill_days,
        task_hours=task_hours,
        first_dose_days=None if never_doses else first_dose_days,
    )


def sample(
    scenario: CohortScenario, n: int, seed: object, months: float = 12
) -> list[PatientScenario]:
    """A cohort of `n` patients over `months` months, reproducible from `seed`."""
    if n < 0:
        raise ValueError("n must not be negative")
    return [sample_patient(scenario, seed, i, months) for i in range(n)]


# ---------------------------------------------------------------- files

SCENARIOS_DIR = Path(__file__).parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """The bundled example scenarios, by name (the file's stem)."""
    return {path.stem: path for path in sorted(SCENARIOS_DIR.glob("*.yaml"))}


def _where(loc: tuple[int | str, ...]) -> str:
    # A discriminated union's tag shows as a step (pa_turnaround_days.lognormal.p90).
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_scenario(data: object, source: str = "<scenario>") -> CohortScenario:
    """A `CohortScenario` from parsed YAML; a `ScenarioError` names `source` and the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the scenario must be a mapping of fields")
    try:
        return CohortScenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{source}: {problems}") from None


def load_scenario(path: str | Path) -> CohortScenario:
    """Read a scenario YAML file, or a bundled one by name (e.g. "typical")."""
    file = Path(path)
    if not file.exists() and str(path) in bundled_scenarios():
        file = bundled_scenarios()[str(path)]
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise ScenarioError(f"{file}: not valid YAML{line}: {problem}") from None
    return parse_scenario(data, str(file))
