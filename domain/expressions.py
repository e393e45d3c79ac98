"""A small, safe expression language for template branches and computed times.

Parsed with `ast` and evaluated by walking a whitelist of node types: names and
attribute/item access over the journey context, literals, comparisons, boolean
logic, arithmetic, and a few pure functions. No `eval`, no calls but the ones
below, no dunder access. Deterministic, so it is safe inside workflow code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any


class ExpressionError(ValueError):
    pass


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ExpressionError(f"at(): not an ISO date-time: {value!r}") from exc


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "days": lambda n: timedelta(days=float(n)),
    "hours": lambda n: timedelta(hours=float(n)),
    "minutes": lambda n: timedelta(minutes=float(n)),
    "at": _at,
    "len": len,
    "min": min,
    "max": max,
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_MISSING = object()


def parse(source: str) -> ast.expr:
    """Parse and check an expression; raises ExpressionError naming what is not allowed.

    Parsed once per source text (a template's expressions are evaluated at every turn of
    a journey); the tree is shared, so nothing may change it (evaluation only reads it)."""
    return _parse(source)


@lru_cache(maxsize=4096)
def _parse(source: str) -> ast.expr:
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc.msg}") from exc
    for node in ast.walk(tree):
        _check_node(node)
    return tree.body


def _check_node(node: ast.AST) -> None:
    allowed = (
        ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
        ast.BinOp, ast.Compare, ast.Name, ast.Load, ast.Attribute, ast.Subscript,
        ast.Constant, ast.Call, ast.List, ast.Tuple, ast.IfExp,
        *_BINARY, *_COMPARE,
    )  # fmt: skip
    if not isinstance(node, allowed):
        raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ExpressionError(f"attribute {node.attr!r} is not allowed")
    if isinstance(node, ast.Call) and not (
        isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords
    ):
        called = ast.unparse(node.func)
        raise ExpressionError(
            f"calling {called!r} is not allowed; only {', '.join(sorted(FUNCTIONS))} "
            "(positional arguments only)"
        )


def names(source: str) -> set[str]:
    """Top-level context names an expression reads (for load-time checks)."""
    tree = parse(source)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called - {"None"}


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    return _compiled(source)(context)


# -- evaluation ----------------------------------------------------------------------------
# A checked tree is turned once into nested closures (one per node) that do what `_eval`
# does walking it, in the same order with the same errors, without matching each node's
# type again at every evaluation. `_eval` stays the reference (tests compare the two).

Compiled = Callable[[Mapping[str, Any]], Any]
_WORDS = {"true": True, "false": False, "null": None}


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Compiled:
    return _compile(parse(source), source)


def _compile(node: ast.expr, src: str) -> Compiled:
    match node:
        case ast.Constant(value=value):
            return lambda ctx: value
        case ast.Name(id=name):
            if name in _WORDS:
                word = _WORDS[name]
                return lambda ctx: word
            return lambda ctx: ctx.get(name)
        case ast.Attribute(value=obj, attr=attr):
            of = _compile(obj, src)
            return lambda ctx: _lookup(of(ctx), attr)
        case ast.Subscript(value=container, slice=key):
            within, at = _compile(container, src), _compile(key, src)
            return lambda ctx: _lookup(within(ctx), at(ctx))
        case ast.BoolOp(op=ast.And(), values=operands):
            every = [_compile(o, src) for o in operands]

            def both(ctx: Mapping[str, Any]) -> Any:
                result: Any = True
                for operand in every:
                    result = operand(ctx)
                    if not result:
                        return result
                return result

            return both
        case ast.BoolOp(op=ast.Or(), values=operands):
            either = [_compile(o, src) for o in operands]

            def first(ctx: Mapping[str, Any]) -> Any:
                result: Any = False
                for operand in either:
                    result = operand(ctx)
                    if result:
                        return result
                return result

            return first
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            negated = _compile(operand, src)
            return lambda ctx: not negated(ctx)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            minus = _compile(operand, src)
            return lambda ctx: _apply(lambda v, _: -v, minus(ctx), None, src)
        case ast.BinOp(left=left, op=binop, right=right):
            fn, lhs, rhs = _BINARY[type(binop)], _compile(left, src), _compile(right, src)
            return lambda ctx: _apply(fn, lhs(ctx), rhs(ctx), src)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            head = _compile(left, src)
            chain = [
                (_COMPARE[type(o)], _compile(c, src)) for o, c in zip(ops, comparators, strict=True)
            ]

            def compare(ctx: Mapping[str, Any]) -> Any:
                current = head(ctx)
                for fn, comparator in chain:
                    other = comparator(ctx)
                    if not _apply(fn, current, other, src):
                        return False
                    current = other
                return True

            return compare
        case ast.IfExp(test=test, body=body, orelse=orelse):
            cond, then, otherwise = _compile(test, src), _compile(body, src), _compile(orelse, src)
            return lambda ctx: then(ctx) if cond(ctx) else otherwise(ctx)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            items = [_compile(e, src) for e in elts]
            return lambda ctx: [item(ctx) for item in items]
        case ast.Call(func=ast.Name(id=fn_name), args=args):
            arguments = [_compile(a, src) for a in args]

            def call(ctx: Mapping[str, Any]) -> Any:
                values = [a(ctx) for a in arguments]
                try:
                    return FUNCTIONS[fn_name](*values)
                except ExpressionError:
                    raise
                except (TypeError, ValueError, OverflowError) as exc:
                    raise ExpressionError(
                        f"{src!r}: {fn_name}() of {values!r} failed: {exc}"
                    ) from exc

            return call

    def cannot(ctx: Mapping[str, Any]) -> Any:
        raise ExpressionError(f"cannot evaluate {ast.dump(node)} in {src!r}")

    return cannot


def _lookup(container: Any, key: Any) -> Any:
    if type(container) is dict:  # the common case, without the ABC check
        return container.get(key)
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple) and isinstance(key, int):
        return container[key] if -len(container) <= key < len(container) else None
    return None


def _eval(node: ast.expr, ctx: Mapping[str, Any], src: str) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[name]
            return ctx.get(name)
        case ast.Attribute(value=obj, attr=attr):
            return _lookup(_eval(obj, ctx, src), attr)
        case ast.Subscript(value=container, slice=key):
            return _lookup(_eval(container, ctx, src), _eval(key, ctx, src))
        case ast.BoolOp(op=ast.And(), values=operands):
            result: Any = True
            for operand in operands:
                result = _eval(operand, ctx, src)
                if not result:
                    return result
            return result
        case ast.BoolOp(op=ast.Or(), values=operands):
            result = False
            for operand in operands:
                result = _eval(operand, ctx, src)
                if result:
                    return result
            return result
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, ctx, src)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return _apply(lambda v, _: -v, _eval(operand, ctx, src), None, src)
        case ast.BinOp(left=left, op=binop, right=right):
            return _apply(_BINARY[type(binop)], _eval(left, ctx, src), _eval(right, ctx, src), src)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _eval(left, ctx, src)
            for cmpop, comparator in zip(ops, comparators, strict=True):
                other = _eval(comparator, ctx, src)
                if not _apply(_COMPARE[type(cmpop)], current, other, src):
                    return False
                current = other
            return True
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body if _eval(test, ctx, src) else orelse, ctx, src)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            return [_eval(e, ctx, src) for e in elts]
        case ast.Call(func=ast.Name(id=fn), args=args):
            values = [_eval(a, ctx, src) for a in args]
            try:
                return FUNCTIONS[fn](*values)
            except ExpressionError:
                raise
            except (TypeError, ValueError, OverflowError) as exc:
                raise ExpressionError(f"{src!r}: {fn}() of {values!r} failed: {exc}") from exc
    raise ExpressionError(f"cannot evaluate {ast.dump(node)} in {src!r}")


def _apply(fn: Callable[[Any, Any], Any], left: Any, right: Any, src: str) -> Any:
    try:
        return fn(left, right)
    except TypeError as exc:
        raise ExpressionError(
            f"{src!r}: cannot combine {type(left).__name__} and {type(right).__name__}"
        ) from exc
    except (ArithmeticError, ValueError) as exc:
        raise ExpressionError(f"{src!r}: {exc}") from exc
