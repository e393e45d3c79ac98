from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.expressions import ExpressionError, _eval, evaluate, names, parse

CTX = {
    "steps": {"benefits": {"pa_required": True, "copay": 40}, "pa": {"outcome": "denied"}},
    "events": {"delivered": {"occurred_at": "2024-03-01T09:30:00", "items": [1, 2, 3]}},
    "params": {"days_supply": 28, "refill_lead_days": 7},
}


VALUES = [
    ("steps.benefits.pa_required and steps.pa.outcome == 'denied'", True),
    ("steps.benefits.pa_required and steps.pa.outcome == 'approved'", False),
    ("steps.nope.x or 'fallback'", "fallback"),
    ("not steps.benefits.pa_required", False),
    ("not steps.nope", True),
    ("steps.benefits.copay >= 40", True),
    ("steps.benefits.copay != 40", False),
    ("10 < steps.benefits.copay <= 40", True),
    ("10 < steps.benefits.copay < 40", False),
    ("steps.pa.outcome in ['denied', 'withdrawn']", True),
    ("steps.pa.outcome not in ('denied',)", False),
    ("params.days_supply - params.refill_lead_days", 21),
    ("params.days_supply % 5 * 2 + -1", 5),
    ("events.delivered.items[1]", 2),
    ("events.delivered.items[9]", None),
    ("events.delivered['items'][-1]", 3),
    ("len(events.delivered.items) + max(1, 4) - min(2, 3)", 5),
    ("'yes' if steps.benefits.pa_required else 'no'", "yes"),
    ("true and not false", True),
    ("steps.nope == null", True),
]


@pytest.mark.parametrize(("source", "expected"), VALUES)
def test_evaluate(source: str, expected: object) -> None:
    assert evaluate(source, CTX) == expected


def test_datetime_arithmetic() -> None:
    due = evaluate(
        "at(events.delivered.occurred_at) + days(params.days_supply - params.refill_lead_days)",
        CTX,
    )
    assert due == datetime(2024, 3, 22, 9, 30)
    assert evaluate("at('2024-03-01T00:00:00') - hours(36)", {}) == datetime(2024, 2, 28, 12)
    assert evaluate("at('2024-03-02') - at('2024-03-01') == days(1)", {}) is True
    assert evaluate("minutes(90)", {}) == timedelta(hours=1, minutes=30)
    assert evaluate("at(events.delivered.occurred_at) > at('2024-02-29T23:00')", CTX) is True


def test_at_rejects_what_is_not_a_date_time() -> None:
    with pytest.raises(ExpressionError, match="not an ISO date-time: 'soon'"):
        evaluate("at('soon')", {})
    with pytest.raises(ExpressionError, match="not an ISO date-time: None"):
        evaluate("at(events.missing.occurred_at)", {})


def test_missing_names_are_none() -> None:
    assert evaluate("steps.never_ran.outcome", {}) is None
    assert evaluate("journey", {}) is None
    assert evaluate("steps.benefits.copay.cents", CTX) is None  # no attribute on an int


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("__import__('os')", "'__import__' is not allowed"),
        ("steps.__class__", "'__class__' is not allowed"),
        ("steps._private", "'_private' is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("(lambda: 1)()", "'lambda: 1' is not allowed"),
        ("open('/etc/passwd')", "'open' is not allowed"),
        ("steps.get('x')", "'steps.get' is not allowed"),
        ("days(n=3)", "positional arguments only"),
        ("[x for x in steps]", "ListComp is not allowed"),
        ("{'a': 1}", "Dict is not allowed"),
        ("2 ** 100", "Pow is not allowed"),
        ("steps.a if", "syntax error"),
        ("x := 1", "syntax error"),
    ],
)
def test_forbidden_constructs(source: str, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    assert words in str(caught.value)


RUNTIME_ERRORS = [
    ("steps.nope < 3", "cannot combine NoneType and int"),
    ("1 / 0", "division by zero"),
    ("-steps.nope", "cannot combine NoneType"),
    ("days(steps.nope)", "days() of [None] failed"),
    ("len(3)", "len() of [3] failed"),
    ("min()", "min() of [] failed"),
]


@pytest.mark.parametrize(("source", "words"), RUNTIME_ERRORS)
def test_runtime_errors_are_expression_errors(source: str, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(source, CTX)
    assert words in str(caught.value)


def test_names_are_the_context_roots_read() -> None:
    source = "at(events.delivered.occurred_at) + days(params.n) > journey.started_at"
    assert names(source) == {"events", "params", "journey"}
    assert names("true and null") == {"true", "null"}


def test_compiled_evaluation_answers_as_the_tree_walk() -> None:
    """`evaluate` runs each expression compiled once into closures; it gives what walking
    the checked tree gives (`_eval`, the reference), values and errors alike."""
    cases = [
        *(source for source, _ in VALUES),
        *(source for source, _ in RUNTIME_ERRORS),
        "at(events.delivered.occurred_at) + days(params.days_supply - params.refill_lead_days)",
        "steps.benefits.copay if steps.nope else [1, (2, 3), -params.days_supply]",
        "steps.nope or steps.pa.outcome and 0 or 'x'",
    ]
    for source in cases:
        for ctx in (CTX, {}, {"steps": {"benefits": {"copay": "40"}}}):
            try:
                expected: object = _eval(parse(source), ctx, source)
            except ExpressionError as exc:
                expected = ("error", str(exc))
            try:
                got: object = evaluate(source, ctx)
            except ExpressionError as exc:
                got = ("error", str(exc))
            assert got == expected, source
