"""The kit's guardrails as plain validators over a resource's inputs.

The same functions back the CrossGuard policy pack (``policy/``) and the offline check
(``mlops plan --policy``), so a rule reads the same whether Pulumi or the plan runs it.
"""

from guardrails.catalog import GUARDRAILS, guardrail_named
from guardrails.config import PolicyConfig, PolicyConfigError, load_policy_config
from guardrails.model import Context, Finding, Guardrail, Level, Resource
from guardrails.runner import Violation, check_plan, check_resources, has_mandatory

__all__ = [
    "GUARDRAILS",
    "Context",
    "Finding",
    "Guardrail",
    "Level",
    "PolicyConfig",
    "PolicyConfigError",
    "Resource",
    "Violation",
    "check_plan",
    "check_resources",
    "guardrail_named",
    "has_mandatory",
    "load_policy_config",
]
