"""Request shapes: each planned resource as the AWS API requests the provider would send,
validated against botocore's service model (issue 15, "Cloud fidelity").

``check_plan(plan)`` maps every AWS resource of a plan (``MAPPINGS``, one module per service
family, each citing the Terraform provider source it follows) and every pipeline step to its
requests, and reports what AWS would refuse.
"""

from infra.plan.aws_requests.plan_check import (
    MAPPINGS,
    PlanCheck,
    ResourceCheck,
    check_plan,
    resource_requests,
)

__all__ = ["MAPPINGS", "PlanCheck", "ResourceCheck", "check_plan", "resource_requests"]
