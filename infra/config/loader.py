"""Turn a stack's raw Pulumi config into validated ``Settings``.

Pulumi hands a program its config as ``namespace:key`` -> string, with structured values
JSON-encoded. ``settings_from_config`` takes exactly that shape, so the real program, the
offline plan and the tests all go through one validation path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from infra.config.settings import ConfigKeyError, Settings

NAMESPACE = "mlops"
REGION_KEY = "aws:region"
# Top-level keys under the mlops namespace, as written in stack files.
SCALAR_KEYS = {
    "environment": "environment",
    "serviceName": "service_name",
    "accountId": "account_id",
    "assumeRoleArn": "assume_role_arn",
}
OBJECT_KEYS = {
    "tags": "tags",
    "storage": "storage",
    "training": "training",
    "serving": "serving",
    "monitoring": "monitoring",
    "bias": "bias",
    "explainability": "explainability",
    "batch": "batch",
    "network": "network",
    "sharing": "sharing",
    "sharedRegistry": "shared_registry",
}
_FIELD_TO_KEY = {field: key for key, field in {**SCALAR_KEYS, **OBJECT_KEYS}.items()}


class ConfigError(Exception):
    """Stack config is invalid; the message names every offending key."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        # A 300-character stack name, repeated in each line, would hide the problem.
        self.problems = [p.replace(f"'{stack}'", shown_name(stack)) for p in problems]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid config for stack {shown_name(stack)}:\n{lines}")


def shown_name(stack: str) -> str:
    """The stack name quoted, cut short when it is absurdly long (it is repeated in errors)."""
    if len(stack) <= 40:
        return f"'{stack}'"
    return f"'{stack[:24]}...' ({len(stack)} characters)"


def settings_from_config(raw: Mapping[str, str], *, project: str, stack: str) -> Settings:
    problems: list[str] = []
    data: dict[str, Any] = {"project": project, "stack": stack}

    if REGION_KEY in raw:
        data["region"] = raw[REGION_KEY]
    for full_key, value in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if namespace == project and project != NAMESPACE:
            problems.append(
                f"{full_key}: kit settings live in the '{NAMESPACE}:' namespace, not the "
                f"project's; rename it to '{NAMESPACE}:{key}'"
            )
        if namespace != NAMESPACE:
            continue
        if key in SCALAR_KEYS:
            data[SCALAR_KEYS[key]] = value
        elif key in OBJECT_KEYS:
            parsed = _parse_object(full_key, value, problems)
            if parsed is not None:
                data[OBJECT_KEYS[key]] = parsed
        else:
            allowed = ", ".join(f"{NAMESPACE}:{k}" for k in (*SCALAR_KEYS, *OBJECT_KEYS))
            problems.append(f"{full_key}: unknown key; allowed: {allowed}")

    if problems:
        raise ConfigError(stack, problems)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(stack, [_describe(error) for error in exc.errors()]) from None


def _parse_object(key: str, value: str, problems: list[str]) -> Any:
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        problems.append(f"{key}: must be a mapping of settings, got {value!r}")
        return None
    if not isinstance(parsed, dict):
        problems.append(f"{key}: must be a mapping of settings, got {value!r}")
        return None
    return parsed


def config_key(loc: tuple[int | str, ...]) -> str:
    """Map a pydantic error location to the key a user writes in the stack file."""
    if not loc:
        return f"{NAMESPACE}:(root)"
    head, *rest = loc
    if head == "region":
        return REGION_KEY
    if head == "stack":
        return "stack name"
    if head == "project":
        return "project name"
    key = f"{NAMESPACE}:{_FIELD_TO_KEY.get(str(head), str(head))}"
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, ConfigKeyError):
        return f"{NAMESPACE}:{cause.key}: {cause.message}"

    key = config_key(loc)
    kind = error["type"]
    if kind == "missing":
        return f"{key}: is required{_how_to_set(key)}"
    if kind == "extra_forbidden":
        return f"{key}: unknown setting (check the spelling; keys are camelCase)"
    if kind == "value_error" and cause is not None:
        return f"{key}: {cause}"
    message = error["msg"]
    if "input" in error and kind not in {"dict_type", "model_type"}:
        message += f"; got {error['input']!r}"
    return f"{key}: {message}"


def _how_to_set(key: str) -> str:
    if key == REGION_KEY:
        return "; run `pulumi config set aws:region <region>`, e.g. eu-west-1"
    if key.startswith(f"{NAMESPACE}:") and "." not in key:
        return f"; run `pulumi config set {key} <value>`"
    return ""


def read_pulumi_config() -> dict[str, str]:
    """All config the Pulumi engine gave this program, as ``namespace:key`` -> string.

    ``pulumi.Config`` only answers for keys you already know; we also want to catch typos,
    so we read the engine-supplied map that backs it.
    """
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    normalized: dict[str, str] = {}
    for key, value in merged.items():
        # Older engines send "ns:config:key"; current ones send "ns:key".
        namespace, _, rest = key.partition(":")
        if rest.startswith("config:"):
            rest = rest[len("config:") :]
        normalized[f"{namespace}:{rest}"] = value if isinstance(value, str) else json.dumps(value)
    return normalized


def load_settings() -> Settings:
    """Settings for the stack Pulumi is running now."""
    import pulumi

    return settings_from_config(
        read_pulumi_config(), project=pulumi.get_project(), stack=pulumi.get_stack()
    )
