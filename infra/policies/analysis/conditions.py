"""A statement's Condition block against a request context, as IAM evaluates it.

The rules that are easy to get wrong, from AWS's condition-operator reference
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
a key absent from the request makes a condition false, except that negated operators
(StringNotEquals, ArnNotLike...) are then true, ``...IfExists`` is then true, ``Null`` tests
presence itself, ``ForAllValues`` is then true and ``ForAnyValue`` false. Keys are matched
case-insensitively; values case-sensitively unless the operator says IgnoreCase.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from infra.policies.analysis.operators import Operator
from infra.policies.analysis.patterns import arn_matches, glob_matches

Context = Mapping[str, tuple[str, ...]]


class UnsupportedPolicyError(ValueError):
    """The document uses something this evaluator does not decide (e.g. policy variables);
    refusing is safer than a wrong answer."""


def normalize_context(context: Mapping[str, str | Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {
        key.lower(): (value,) if isinstance(value, str) else tuple(value)
        for key, value in context.items()
    }


def conditions_hold(condition: Mapping[str, Any], context: Context) -> bool:
    """All operators, and within each all keys, must hold (values of one key: any)."""
    for operator_name, block in condition.items():
        operator = Operator.parse(operator_name)
        for key, raw in block.items():
            values = [_policy_value(v) for v in (raw if isinstance(raw, list) else [raw])]
            if not _holds(operator, context.get(key.lower()), values):
                return False
    return True


def _policy_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "${" in text:
        raise UnsupportedPolicyError(f"policy variable in condition value {text!r}")
    return text


def _holds(operator: Operator, present: tuple[str, ...] | None, wanted: list[str]) -> bool:
    if operator.base == "Null":
        # {"Null": {"key": "true"}}: the key is absent.
        return all((present is None) == (w.lower() == "true") for w in wanted)
    if present is None:
        if operator.if_exists or operator.set_operator == "ForAllValues":
            return True
        if operator.set_operator == "ForAnyValue":
            return False
        return operator.negated
    compare = _COMPARISONS[operator.base]

    def one(value: str) -> bool:
        matched = any(compare(value, w) for w in wanted)
        return not matched if operator.negated else matched

    if operator.set_operator == "ForAnyValue":
        return any(one(v) for v in present)
    if operator.set_operator == "ForAllValues":
        return all(one(v) for v in present)
    if len(present) != 1:
        raise UnsupportedPolicyError(
            f"{operator.name} on a key with {len(present)} values needs ForAnyValue/ForAllValues"
        )
    return one(present[0])


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> datetime.datetime:
    if text.replace(".", "", 1).isdigit():
        return datetime.datetime.fromtimestamp(float(text), tz=datetime.UTC)
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _in_network(value: str, network: str) -> bool:
    return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)


def _bool(value: str, wanted: str) -> bool:
    return value.lower() == wanted.lower()


def _binary(value: str, wanted: str) -> bool:
    return base64.b64decode(value) == base64.b64decode(wanted)


# Positive form of each base operator: (request value, policy value) -> match.
_COMPARISONS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, w: v == w,
    "StringNotEquals": lambda v, w: v == w,
    "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringNotEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringLike": lambda v, w: glob_matches(w, v),
    "StringNotLike": lambda v, w: glob_matches(w, v),
    "NumericEquals": lambda v, w: _number(v) == _number(w),
    "NumericNotEquals": lambda v, w: _number(v) == _number(w),
    "NumericLessThan": lambda v, w: _number(v) < _number(w),
    "NumericLessThanEquals": lambda v, w: _number(v) <= _number(w),
    "NumericGreaterThan": lambda v, w: _number(v) > _number(w),
    "NumericGreaterThanEquals": lambda v, w: _number(v) >= _number(w),
    "DateEquals": lambda v, w: _date(v) == _date(w),
    "DateNotEquals": lambda v, w: _date(v) == _date(w),
    "DateLessThan": lambda v, w: _date(v) < _date(w),
    "DateLessThanEquals": lambda v, w: _date(v) <= _date(w),
    "DateGreaterThan": lambda v, w: _date(v) > _date(w),
    "DateGreaterThanEquals": lambda v, w: _date(v) >= _date(w),
    "Bool": _bool,
    "BinaryEquals": _binary,
    "IpAddress": _in_network,
    "NotIpAddress": _in_network,
    # ArnEquals behaves as ArnLike: AWS documents both as the same match.
    "ArnEquals": lambda v, w: arn_matches(w, v),
    "ArnLike": lambda v, w: arn_matches(w, v),
    "ArnNotEquals": lambda v, w: arn_matches(w, v),
    "ArnNotLike": lambda v, w: arn_matches(w, v),
}
