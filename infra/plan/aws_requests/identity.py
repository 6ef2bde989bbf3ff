"""IAM resources -> the requests the provider sends.

Sources (hashicorp/terraform-provider-aws, internal/service/iam/...): role.go
(resourceRoleCreate: CreateRole with its tags), role_policy.go (resourceRolePolicyPut:
PutRolePolicy).
"""

from __future__ import annotations

from infra.plan.aws_requests.inputs import Context, Inputs, Request, request


def role(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("forceDetachPolicies", "read on delete: detaches policies first")
    params = {
        "RoleName": ctx.name(i),
        "AssumeRolePolicyDocument": i.get("assumeRolePolicy"),
        "Description": i.get("description"),
        "Path": i.get("path"),
        "MaxSessionDuration": i.get("maxSessionDuration"),
        "PermissionsBoundary": i.get("permissionsBoundary"),
        "Tags": ctx.tag_list(i),
    }
    return [request("iam", "CreateRole", params)]


def role_policy(i: Inputs, ctx: Context) -> list[Request]:
    params = {
        "RoleName": i.get("role"),
        "PolicyName": ctx.name(i),
        "PolicyDocument": i.get("policy"),
    }
    return [request("iam", "PutRolePolicy", params)]


MAPPINGS = {
    "aws:iam/role:Role": role,
    "aws:iam/rolePolicy:RolePolicy": role_policy,
}
