"""Policy config in the shape of ``pulumi preview --policy-pack-config``'s file.

``{"all": level, "<policy>": level | {"enforcementLevel": level, "<param>": value}}``, in
JSON or YAML, so one file serves the policy pack and the offline check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from guardrails.catalog import GUARDRAILS
from guardrails.model import Guardrail, Level

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
}


class PolicyConfigError(Exception):
    """The policy config file is unreadable or names an unknown policy, level or parameter."""


@dataclass(frozen=True)
class PolicyConfig:
    all_level: Level | None = None
    levels: Mapping[str, Level] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def level_of(self, guardrail: Guardrail) -> Level:
        return self.levels.get(guardrail.name) or self.all_level or guardrail.level

    def params_of(self, guardrail: Guardrail) -> dict[str, Any]:
        return guardrail.settings(self.params.get(guardrail.name))


def load_policy_config(path: Path) -> PolicyConfig:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise PolicyConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyConfigError(f"{path} is not valid JSON or YAML: {exc}") from None
    return parse_policy_config(document or {}, source=str(path))


def parse_policy_config(document: Any, *, source: str = "policy config") -> PolicyConfig:
    if not isinstance(document, Mapping):
        raise PolicyConfigError(f"{source}: expected a mapping of policy name -> settings")
    known = {g.name: g for g in GUARDRAILS}
    all_level: Level | None = None
    levels: dict[str, Level] = {}
    params: dict[str, dict[str, Any]] = {}
    for name, value in document.items():
        if name == "all":
            all_level = _level(value, f"{source}: all")
            continue
        if name not in known:
            raise PolicyConfigError(
                f"{source}: unknown policy '{name}' (policies: {', '.join(known)})"
            )
        if isinstance(value, Mapping):
            settings = dict(value)
            if "enforcementLevel" in settings:
                levels[name] = _level(settings.pop("enforcementLevel"), f"{source}: {name}")
            _check_params(known[name], settings, source)
            params[name] = settings
        else:
            levels[name] = _level(value, f"{source}: {name}")
    return PolicyConfig(all_level, levels, params)


def _level(value: Any, where: str) -> Level:
    try:
        return Level(value)
    except ValueError:
        choices = ", ".join(level.value for level in Level)
        raise PolicyConfigError(
            f"{where}: enforcement level {value!r} is not one of {choices}"
        ) from None


def _check_params(guardrail: Guardrail, settings: Mapping[str, Any], source: str) -> None:
    for key, value in settings.items():
        param = guardrail.params.get(key)
        if param is None:
            accepted = ", ".join(["enforcementLevel", *guardrail.params])
            raise PolicyConfigError(
                f"{source}: {guardrail.name} has no parameter '{key}' (accepts: {accepted})"
            )
        expected = _JSON_TYPES.get(str(param.schema.get("type")))
        if expected is not None and not isinstance(value, expected):
            raise PolicyConfigError(
                f"{source}: {guardrail.name}.{key} must be a JSON {param.schema['type']}"
            )
