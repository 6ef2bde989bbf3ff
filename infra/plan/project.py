"""Read a Pulumi project and one stack's config file the way the Pulumi CLI would.

Only what the offline plan needs: the project name, and the stack's config as the engine
would hand it to the program (``namespace:key`` -> string, objects JSON-encoded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import validators
from infra.config.loader import ConfigError
from infra.stack_yaml import StackYamlError, load_file

PROJECT_FILE = "Pulumi.yaml"
# What the plan shows in place of a value it cannot decrypt without the Pulumi CLI.
SECRET_PLACEHOLDER = "[secret]"


class ProjectError(Exception):
    """The project or stack file is missing or malformed."""


class StackNameError(ProjectError, ConfigError):
    """A stack name the kit cannot use: a config error, and a ProjectError for the callers
    that look stack files up by name (promotion, stack references)."""


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    path: Path
    values: dict[str, str]
    secret_keys: tuple[str, ...]


def find_project_dir(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectError(f"no {PROJECT_FILE} found in {start} or any parent directory")


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def check_stack_name(stack: str) -> None:
    """Refuse a name before it becomes a file name: every physical name embeds it, and a
    300-character one is not even a file name the OS accepts (ENAMETOOLONG)."""
    try:
        validators.stack_name(stack)
    except ValueError as exc:
        raise StackNameError(stack, [f"stack name: {exc}"]) from None


def stack_file(project_dir: Path, stack: str) -> Path:
    check_stack_name(stack)
    path = project_dir / f"Pulumi.{stack}.yaml"
    try:
        found = path.is_file()
    except OSError as exc:
        raise ProjectError(f"cannot look for {path}: {exc.strerror}") from None
    if not found:
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise ProjectError(
            f"unknown stack '{stack}': no {path.name} in {project_dir} (stacks: {known})"
        )
    return path


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    path = stack_file(project_dir, stack)
    return parse_stack_config(project_dir, stack, path, _read_yaml(path))


def parse_stack_config(
    project_dir: Path, stack: str, path: Path, stack_doc: dict[str, Any]
) -> StackConfig:
    """The config a stack document gives the program (also for a document not yet written).
    ``stack_doc`` may come from a round-trip edit rather than ``load_file``, so its shape is
    checked here too."""
    project_doc = _read_yaml(project_dir / PROJECT_FILE)
    project = project_doc.get("name")
    if not isinstance(project, str) or not project:
        raise ProjectError(f"{project_dir / PROJECT_FILE}: 'name' is missing")
    if not isinstance(stack_doc, dict):
        raise ProjectError(f"{path.name} must be a YAML mapping at the top level")
    config = stack_doc.get("config") or {}
    if not isinstance(config, dict):
        raise ProjectError(f"{path.name}: 'config' must be a mapping of key: value")

    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in {**_project_defaults(project_doc, project), **config}.items():
        if not isinstance(key, str):
            raise ProjectError(f"{path.name}: config key {key!r} is not text; quote it")
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full_key] = SECRET_PLACEHOLDER
            secret_keys.append(full_key)
        elif isinstance(value, str):
            values[full_key] = value
        else:
            try:
                values[full_key] = json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ProjectError(
                    f"{path.name}: {full_key}: {exc}; stack files hold plain text, numbers, "
                    "true/false, lists and mappings"
                ) from None
    return StackConfig(project, stack, path, values, tuple(secret_keys))


def _project_defaults(project_doc: dict[str, Any], project: str) -> dict[str, Any]:
    """Values declared in Pulumi.yaml's ``config:`` block (``value:`` or ``default:``)."""
    declared = project_doc.get("config") or {}
    if not isinstance(declared, dict):
        raise ProjectError(f"{PROJECT_FILE}: 'config' must be a mapping of key: settings")
    defaults: dict[str, Any] = {}
    for key, spec in declared.items():
        if isinstance(spec, dict):
            for field in ("value", "default"):
                if field in spec:
                    defaults[key] = spec[field]
                    break
        else:
            defaults[key] = spec
    return defaults


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = load_file(path)
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror}") from None
    except StackYamlError as exc:
        raise ProjectError(str(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ProjectError(f"{path.name} must be a YAML mapping at the top level")
    return loaded
