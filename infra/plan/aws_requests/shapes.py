"""Validate one AWS API request against botocore's model of its input shape.

botocore's own ``ParamValidator`` runs first-hand: it checks required members, unknown
members, types and minimums. The walk here adds what it leaves to the service: enum
membership, patterns, maximum lengths and sizes, numeric maximums, and union shapes. Each
finding names the field path and the rule, so a failure reads as what AWS would refuse.

Values the plan cannot know (``Opaque``: Pulumi unknowns, pipeline expressions) are checked
for type only; for botocore's validator they are replaced by a stand-in of the right type.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import botocore.validate

from infra.config import aws_catalog
from infra.config.java_regex import compile_pattern

OpaqueKind = Literal["string", "integer", "float", "boolean", "scalar"]
# Which opaque kinds may stand where a shape of this type is expected.
_FITS: dict[str, frozenset[str]] = {
    "string": frozenset({"string", "scalar"}),
    "integer": frozenset({"integer", "scalar"}),
    "long": frozenset({"integer", "scalar"}),
    "float": frozenset({"integer", "float", "scalar"}),
    "double": frozenset({"integer", "float", "scalar"}),
    "boolean": frozenset({"boolean", "scalar"}),
    "timestamp": frozenset({"string", "scalar"}),
    "blob": frozenset({"string", "scalar"}),
}


@dataclass(frozen=True)
class Opaque:
    """A value the plan cannot see, with what it is known to be at run time."""

    kind: OpaqueKind
    origin: str

    def __str__(self) -> str:
        return f"<{self.kind}: {self.origin}>"


@dataclass(frozen=True)
class Violation:
    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '(request)'}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Outcome:
    violations: tuple[Violation, ...]
    # Leaf values checked, and how many of them were opaque (type-checked only).
    fields: int
    opaque: int


@dataclass
class _Walk:
    violations: list[Violation] = field(default_factory=list)
    fields: int = 0
    opaque: int = 0

    def fail(self, path: str, rule: str, detail: str) -> None:
        self.violations.append(Violation(path, rule, detail))


def operation_input(service: str, operation: str) -> Any:
    return aws_catalog.service_model(service).operation_model(operation).input_shape


def validate(
    service: str,
    operation: str,
    params: dict[str, Any],
    *,
    not_required: frozenset[str] = frozenset(),
) -> Outcome:
    """Check ``params`` as the ``operation`` request; ``not_required`` are top-level members
    someone else supplies (a pipeline names its own jobs)."""
    shape = operation_input(service, operation)
    walk = _Walk()
    concrete = _structure(params, shape, "", walk, not_required)
    for member in not_required:
        if member in shape.members and member not in params:
            concrete[member] = _stand_in(shape.members[member])
    report = botocore.validate.ParamValidator().validate(concrete, shape)
    if report.has_errors():
        for line in report.generate_report().splitlines():
            walk.fail("(botocore)", "botocore ParamValidator", line.strip())
    return Outcome(tuple(walk.violations), walk.fields, walk.opaque)


def _check(value: Any, shape: Any, path: str, walk: _Walk) -> Any:
    """Check one value; return it with opaque parts replaced by stand-ins for botocore."""
    kind = shape.type_name
    if isinstance(value, Opaque):
        walk.fields += 1
        walk.opaque += 1
        if value.kind not in _FITS.get(kind, frozenset()):
            walk.fail(path, "type", f"{value} does not fit {shape.name} ({kind})")
        return _stand_in(shape)
    if kind == "structure":
        return _structure(value, shape, path, walk, frozenset())
    if kind == "list":
        return _list(value, shape, path, walk)
    if kind == "map":
        return _map(value, shape, path, walk)
    walk.fields += 1
    if kind == "string":
        _string(value, shape, path, walk)
    elif kind in ("integer", "long", "float", "double"):
        _number(value, shape, path, walk)
    elif kind == "boolean" and not isinstance(value, bool):
        walk.fail(path, "type", f"{value!r} is not a boolean")
    elif kind == "blob" and not isinstance(value, bytes | bytearray | str):
        walk.fail(path, "type", f"{type(value).__name__} is not a blob")
    elif kind == "timestamp" and not isinstance(value, datetime.datetime | str | int):
        walk.fail(path, "type", f"{value!r} is not a timestamp")
    return value


def _structure(
    value: Any, shape: Any, path: str, walk: _Walk, not_required: frozenset[str]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        walk.fail(path, "type", f"expected a structure ({shape.name}), got {type(value).__name__}")
        return {}
    members = shape.members
    concrete: dict[str, Any] = {}
    for name, member_value in value.items():
        where = f"{path}.{name}" if path else name
        if name not in members:
            walk.fail(where, "unknown member", f"{shape.name} has no member {name!r}")
            continue
        concrete[name] = _check(member_value, members[name], where, walk)
    for name in shape.required_members:
        if name not in value and name not in not_required:
            where = f"{path}.{name}" if path else name
            walk.fail(where, "required", f"{shape.name} requires {name}")
    if shape.metadata.get("union") and len(value) != 1:
        walk.fail(path, "union", f"{shape.name} takes exactly one member, got {sorted(value)}")
    return concrete


def _list(value: Any, shape: Any, path: str, walk: _Walk) -> list[Any]:
    if not isinstance(value, list):
        walk.fail(path, "type", f"expected a list ({shape.name}), got {type(value).__name__}")
        return []
    _bounds(len(value), shape, path, walk, "items")
    return [_check(item, shape.member, f"{path}[{i}]", walk) for i, item in enumerate(value)]


def _map(value: Any, shape: Any, path: str, walk: _Walk) -> dict[Any, Any]:
    if not isinstance(value, dict):
        walk.fail(path, "type", f"expected a map ({shape.name}), got {type(value).__name__}")
        return {}
    _bounds(len(value), shape, path, walk, "entries")
    concrete: dict[Any, Any] = {}
    for key, item in value.items():
        where = f"{path}[{key!r}]"
        _check(key, shape.key, f"{where} (key)", walk)
        concrete[key] = _check(item, shape.value, where, walk)
    return concrete


def _string(value: Any, shape: Any, path: str, walk: _Walk) -> None:
    if not isinstance(value, str):
        walk.fail(path, "type", f"{value!r} is not a string ({shape.name})")
        return
    if shape.enum and value not in shape.enum:
        walk.fail(path, "enum", f"{value!r} is not one of {shape.name}: {_listing(shape.enum)}")
        return
    _bounds(len(value), shape, path, walk, "characters")
    pattern = shape.metadata.get("pattern")
    if pattern and not compile_pattern(pattern).fullmatch(value):
        walk.fail(path, "pattern", f"{_short(value)} does not match {shape.name} {pattern!r}")


def _number(value: Any, shape: Any, path: str, walk: _Walk) -> None:
    integral = shape.type_name in ("integer", "long")
    allowed = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        walk.fail(path, "type", f"{value!r} is not {'an integer' if integral else 'a number'}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        walk.fail(path, "type", f"{value!r} is not a finite number")
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        walk.fail(path, "range", f"{value} is below {shape.name}'s minimum {low}")
    if high is not None and value > high:
        walk.fail(path, "range", f"{value} is above {shape.name}'s maximum {high}")


def _bounds(size: int, shape: Any, path: str, walk: _Walk, unit: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        walk.fail(path, "min length", f"{size} {unit}; {shape.name} needs at least {low}")
    if high is not None and size > high:
        walk.fail(path, "max length", f"{size} {unit}; {shape.name} allows at most {high}")


def _stand_in(shape: Any) -> Any:
    """A value of the shape's type that botocore's validator accepts."""
    kind, low = shape.type_name, shape.metadata.get("min", 0)
    if kind == "string":
        return shape.enum[0] if shape.enum else "x" * max(int(low), 1)
    if kind in ("integer", "long"):
        return int(low)
    if kind in ("float", "double"):
        return float(low)
    if kind == "boolean":
        return False
    if kind == "blob":
        return b""
    if kind == "timestamp":
        return datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    if kind == "list":
        return [_stand_in(shape.member) for _ in range(int(low))]
    if kind == "map":
        return {}
    return {name: _stand_in(shape.members[name]) for name in shape.required_members}


def _listing(values: list[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _short(value: str, limit: int = 120) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
