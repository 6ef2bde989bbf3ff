"""Condition operators: ``[ForAnyValue:|ForAllValues:]<Base>[IfExists]``, parsed once."""

from __future__ import annotations

from dataclasses import dataclass

# Base operator -> (type family it tests, negated?). Negated operators are true when the key
# is absent, as AWS documents for all operators but ...IfExists and Null.
BASE_OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("String", False),
    "StringNotEquals": ("String", True),
    "StringEqualsIgnoreCase": ("String", False),
    "StringNotEqualsIgnoreCase": ("String", True),
    "StringLike": ("String", False),
    "StringNotLike": ("String", True),
    "NumericEquals": ("Numeric", False),
    "NumericNotEquals": ("Numeric", True),
    "NumericLessThan": ("Numeric", False),
    "NumericLessThanEquals": ("Numeric", False),
    "NumericGreaterThan": ("Numeric", False),
    "NumericGreaterThanEquals": ("Numeric", False),
    "DateEquals": ("Date", False),
    "DateNotEquals": ("Date", True),
    "DateLessThan": ("Date", False),
    "DateLessThanEquals": ("Date", False),
    "DateGreaterThan": ("Date", False),
    "DateGreaterThanEquals": ("Date", False),
    "Bool": ("Bool", False),
    "BinaryEquals": ("Binary", False),
    "IpAddress": ("IPAddress", False),
    "NotIpAddress": ("IPAddress", True),
    "ArnEquals": ("ARN", False),
    "ArnLike": ("ARN", False),
    "ArnNotEquals": ("ARN", True),
    "ArnNotLike": ("ARN", True),
    "Null": ("Null", False),
}
SET_OPERATORS = ("ForAnyValue", "ForAllValues")


class UnknownOperatorError(ValueError):
    pass


@dataclass(frozen=True)
class Operator:
    name: str
    base: str
    set_operator: str | None
    if_exists: bool

    @property
    def family(self) -> str:
        return BASE_OPERATORS[self.base][0]

    @property
    def negated(self) -> bool:
        return BASE_OPERATORS[self.base][1]

    @classmethod
    def parse(cls, name: str) -> Operator:
        prefix, _, rest = name.rpartition(":")
        if prefix and prefix not in SET_OPERATORS:
            raise UnknownOperatorError(f"condition operator {name}: unknown qualifier {prefix}")
        base = rest.removesuffix("IfExists")
        if base not in BASE_OPERATORS or (base == "Null" and base != rest):
            raise UnknownOperatorError(f"condition operator {name} does not exist")
        return cls(name, base, prefix or None, base != rest)
