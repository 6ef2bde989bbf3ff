"""required-tags: every taggable AWS resource carries the kit's cost and ownership tags."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from functools import cache
from typing import Any

from guardrails.model import Context, own_tags, subject

DEFAULT_TAGS = ("project", "environment", "stack", "managed-by")


@cache
def taggable(resource_type: str) -> bool:
    """Whether pulumi-aws's resource class takes ``tags`` (asked of the SDK, not a list)."""
    package, module_path, class_name = [*resource_type.split(":"), "", ""][:3]
    if package != "aws" or not class_name:
        return False
    module = module_path.split("/")[0]
    try:
        found = importlib.import_module(
            "pulumi_aws" if module == "index" else f"pulumi_aws.{module}"
        )
    except ImportError:
        return False
    resource_class = getattr(found, class_name, None)
    init = getattr(resource_class, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def validate(resource_type: str, props: Mapping[str, Any], context: Context) -> list[str]:
    if not taggable(resource_type):
        return []
    # AWS applies the provider's defaultTags to every resource it manages.
    tags = {**context.provider_tags, **own_tags(props)}
    required = context.params.get("tags", DEFAULT_TAGS)
    missing = [tag for tag in required if tag not in tags]
    if not missing:
        return []
    return [
        f"{subject(resource_type, context.name)}: missing required tags {', '.join(missing)} "
        "(set them on the resource or in the provider's defaultTags)"
    ]
