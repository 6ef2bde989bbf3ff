"""allowed-instance-types: each environment runs only the instance types it budgets for."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from guardrails.encryption import ENDPOINT_CONFIG, TRAINING_JOB, instance_variants
from guardrails.model import Context, known, lookup, subject

# Globs per environment; an environment not listed is not restricted.
DEFAULT_ALLOWED: dict[str, list[str]] = {
    "dev": ["ml.t3.*", "ml.m5.large", "ml.m5.xlarge"],
    "staging": ["ml.t3.*", "ml.m5.*", "ml.c5.*"],
    "prod": ["ml.m5.*", "ml.c5.*", "ml.m6i.*", "ml.c6i.*"],
}


def _instance_types(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == ENDPOINT_CONFIG:
        found = [v.get("instanceType") for v in instance_variants(props)]
    elif resource_type == TRAINING_JOB:
        found = [lookup(props, "resourceConfig.instanceType")]
    else:
        return []
    return [t for t in found if isinstance(t, str) and known(t)]


def validate(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    allowed_by_env = context.params.get("allowed", DEFAULT_ALLOWED)
    if context.environment is None or context.environment not in allowed_by_env:
        return []
    allowed = allowed_by_env[context.environment]
    return [
        f"{subject(resource_type, context.name)}: instance type {instance_type} is not "
        f"allowed in environment '{context.environment}' (allowed: {', '.join(allowed)})"
        for instance_type in _instance_types(resource_type, props)
        if not any(fnmatchcase(instance_type, pattern) for pattern in allowed)
    ]
