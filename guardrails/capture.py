"""data-capture-in-prod: production endpoints record what they serve (drift needs it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardrails.encryption import ENDPOINT_CONFIG, capture_enabled, instance_variants
from guardrails.model import Context, lookup, subject

DEFAULT_ENVIRONMENTS = ("prod",)


def validate(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    if resource_type != ENDPOINT_CONFIG or not instance_variants(props):
        return []  # serverless variants cannot capture data
    environments = context.params.get("environments", DEFAULT_ENVIRONMENTS)
    if context.environment is None or context.environment not in environments:
        return []
    percent = lookup(props, "dataCaptureConfig.initialSamplingPercentage")
    if capture_enabled(props) and percent != 0:
        return []
    return [
        f"{subject(resource_type, context.name)}: endpoints with instance variants must "
        f"enable data capture (dataCaptureConfig, sampling > 0) in environment "
        f"'{context.environment}'"
    ]
