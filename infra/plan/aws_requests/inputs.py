"""What a request mapping reads: a resource's recorded inputs, and what the provider adds.

Inputs are as the mocks record them: Pulumi's camelCase names, with ``[unknown]`` and
``[secret]`` standing for values the plan cannot see. A mapping reads each input it turns
into a request field; whatever is left unread afterwards is reported, so a new input cannot
reach AWS unvalidated. Inputs the provider never sends are read with ``provider_only``,
which takes the reason.

Values derived from mocked outputs (ARNs, IDs, generated names) are validated like any other
value: the mocks shape them as AWS does (see infra/plan/mocks.py). Only the two placeholders
become ``Opaque`` and are checked for type alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.plan.aws_requests.shapes import Opaque
from infra.plan.mocks import RecordedResource, generated_name
from infra.plan.project import SECRET_PLACEHOLDER

UNKNOWN_PLACEHOLDER = "[unknown]"
Params = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One API call the provider makes for a resource."""

    service: str
    operation: str
    params: Params
    # When the call happens, if not on create (e.g. "on delete").
    when: str = ""

    @property
    def label(self) -> str:
        return f"{self.service}.{self.operation}" + (f" ({self.when})" if self.when else "")


def request(service: str, operation: str, params: Params, when: str = "") -> Request:
    """A request without the fields the provider leaves out (``None``)."""
    return Request(service, operation, _compact(params), when)


class Inputs:
    """One resource's inputs, or one nested block of them."""

    def __init__(self, values: Mapping[str, Any], path: str = "") -> None:
        self._values = values
        self._path = path
        self._read: set[str] = set()
        self._blocks: list[Inputs] = []

    def get(self, key: str) -> Any:
        self._read.add(key)
        return _plan_value(self._values.get(key))

    def has(self, key: str) -> bool:
        return self._values.get(key) is not None

    def provider_only(self, key: str, reason: str) -> None:
        """An input the provider uses itself and never sends to AWS; ``reason`` says how."""
        del reason  # documentation at the call site
        self._read.add(key)

    def block(self, key: str, build: Callable[[Inputs], Params]) -> Any:
        """A nested block (a one-item list in Terraform, an object in Pulumi). Anything but an
        object (an unknown, say) passes through for the shape check to judge."""
        self._read.add(key)
        value = self._values.get(key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, Mapping):
            return _plan_value(value)
        return build(self._child(value, key))

    def blocks(self, key: str, build: Callable[[Inputs], Params]) -> Any:
        """A list of nested blocks; anything but a list of objects passes through."""
        self._read.add(key)
        value = self._values.get(key)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            return _plan_value(value)
        return [build(self._child(item, f"{key}[{i}]")) for i, item in enumerate(value)]

    def unmapped(self) -> list[str]:
        here = [
            self._where(key)
            for key, value in self._values.items()
            if key not in self._read and value is not None
        ]
        return here + [path for block in self._blocks for path in block.unmapped()]

    def _child(self, value: Mapping[str, Any], key: str) -> Inputs:
        child = Inputs(value, self._where(key))
        self._blocks.append(child)
        return child

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key


@dataclass(frozen=True)
class Context:
    """What the provider knows besides the resource's own inputs."""

    resource: RecordedResource
    region: str
    default_tags: Mapping[str, str] = field(default_factory=dict)

    def tags(self, inputs: Inputs) -> dict[str, str]:
        """Tags the provider sends: its default_tags, overridden by the resource's own."""
        return {**self.default_tags, **(inputs.get("tags") or {})}

    def tag_list(
        self, inputs: Inputs, key: str = "Key", value: str = "Value"
    ) -> list[Params] | None:
        tags = self.tags(inputs)
        return [{key: k, value: v} for k, v in sorted(tags.items())] if tags else None

    def name(self, inputs: Inputs, key: str = "name") -> Any:
        """The physical name: given, from ``namePrefix``, or generated as the mocks do."""
        given = inputs.get(key)
        prefix = inputs.get("namePrefix")
        if given is not None:
            return given
        return generated_name(self.resource.type, self.resource.name, prefix)

    @staticmethod
    def unique_id() -> str:
        """Terraform's ``id.UniqueId()``: "terraform-", a timestamp and a counter, 26 digits."""
        return "terraform-" + "20260101000000" + "1".zfill(12)


def _plan_value(value: Any) -> Any:
    if value == UNKNOWN_PLACEHOLDER:
        return Opaque("scalar", "unknown at plan time")
    if value == SECRET_PLACEHOLDER:
        return Opaque("string", "secret")
    if isinstance(value, dict):
        return {k: _plan_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plan_value(v) for v in value]
    return value


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value
