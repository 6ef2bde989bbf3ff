"""IAM, bucket and key policy documents as plain data.

Builders take resolved strings (ARNs, account IDs) and return JSON-ready dicts, so tests can
read every statement without Pulumi, and components only wrap them in ``Output.apply``.
"""

from __future__ import annotations

from typing import Any

Statement = dict[str, Any]
Document = dict[str, Any]

# Actions that IAM only authorizes on "Resource": "*". Nothing else may be granted on "*";
# tests enforce this against every role policy the kit declares.
STAR_ONLY_ACTIONS: dict[str, str] = {
    # Returns a registry-wide login token; ECR has no resource-level permission for it.
    "ecr:GetAuthorizationToken": "ECR login token is account-wide",
    # CloudWatch metrics have no ARNs; we narrow it with the cloudwatch:namespace condition.
    "cloudwatch:PutMetricData": "metrics have no resource ARNs; scoped by namespace condition",
    # SageMaker reads the network it places a job's or model's interfaces in (VPC mode);
    # EC2's Describe* actions take no resource type.
    "ec2:DescribeNetworkInterfaces": "EC2 Describe* calls have no resource type",
    "ec2:DescribeVpcs": "EC2 Describe* calls have no resource type",
    "ec2:DescribeDhcpOptions": "EC2 Describe* calls have no resource type",
    "ec2:DescribeSubnets": "EC2 Describe* calls have no resource type",
    "ec2:DescribeSecurityGroups": "EC2 Describe* calls have no resource type",
}


def document(*statements: Statement) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}
