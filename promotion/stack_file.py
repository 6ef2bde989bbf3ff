"""Which model a stack serves, as written in its ``Pulumi.<stack>.yaml``.

Edits are round-trip: comments, key order and layout survive, so a promotion is a one-line
diff a reviewer can read. A new file is validated exactly as ``pulumi up`` would validate
it before it replaces the old one.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from infra.config.loader import ConfigError, settings_from_config
from infra.config.settings import ModelRef, Settings
from infra.plan.project import ProjectError, parse_stack_config, stack_file
from infra.stack_yaml import remove_stale_temporaries, round_trip_yaml, write_atomically

SERVING_KEY = "mlops:serving"


class StackFileError(Exception):
    """The stack file cannot be read, or the edit would make its config invalid."""


class StackFileConflictError(StackFileError):
    """The file no longer serves what the caller expected: someone else changed it."""

    def __init__(self, path: Path, current: ModelRef | None) -> None:
        super().__init__(f"{path.name} now serves {describe(current)}")
        self.current = current


def describe(model: ModelRef | None) -> str:
    """``packageVersion: 3``, as the file says it; or ``no model``."""
    if model is None:
        return "no model"
    return ", ".join(
        f"{k}: {v}" for k, v in model.model_dump(by_alias=True, exclude_none=True).items()
    )


@dataclass(frozen=True)
class StackFile:
    project_dir: Path
    stack: str

    @property
    def path(self) -> Path:
        try:
            return stack_file(self.project_dir, self.stack)
        except ProjectError as exc:
            raise StackFileError(str(exc)) from None

    def settings(self) -> Settings:
        return self._validate(self._load())

    def served(self) -> ModelRef | None:
        return self.settings().serving.model

    def serve(self, model: ModelRef, *, expected: ModelRef | None) -> bool:
        """Point the stack at ``model``; False (and the file untouched) if it already is.

        A compare-and-set: unless the file still serves ``expected``, raise
        StackFileConflictError rather than overwrite a change this caller never saw."""
        document = self._load()
        served = self._validate(document).serving.model
        if served == model:
            return False
        if served != expected:
            raise StackFileConflictError(self.path, served)
        config = document.setdefault("config", CommentedMap())
        serving = config.setdefault(SERVING_KEY, CommentedMap())
        wanted = model.model_dump(by_alias=True, exclude_none=True)
        current = serving.get("model")
        if isinstance(current, CommentedMap):
            # Edit in place so comments attached to the mapping stay where they were.
            for key in list(current):
                if key not in wanted:
                    del current[key]
            current.update(wanted)
        else:
            serving["model"] = CommentedMap(wanted)
        self._validate(document)
        self._write(document)
        return True

    def remove_stale_temporaries(self) -> list[Path]:
        """Temporary files left by killed writes; call only while holding the file's lock."""
        return remove_stale_temporaries(self.path)

    def _load(self) -> Any:
        try:
            document = round_trip_yaml().load(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, YAMLError) as exc:
            raise StackFileError(f"cannot read {self.path.name}: {exc}") from None
        return document if document is not None else CommentedMap()

    def _validate(self, document: Any) -> Settings:
        plain = json.loads(json.dumps(document))
        try:
            config = parse_stack_config(self.project_dir, self.stack, self.path, plain)
            return settings_from_config(config.values, project=config.project, stack=self.stack)
        except (ProjectError, ConfigError) as exc:
            raise StackFileError(str(exc)) from None

    def _write(self, document: Any) -> None:
        buffer = io.StringIO()
        round_trip_yaml().dump(document, buffer)
        write_atomically(self.path, buffer.getvalue())
