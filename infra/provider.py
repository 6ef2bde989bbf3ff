"""The one AWS provider every resource of the stack uses.

Stacks set ``pulumi:disable-default-providers: [aws]``, so a resource that forgets this
provider fails instead of silently deploying untagged into whatever region the shell has.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config.settings import Settings


class WrongAccountError(Exception):
    """The credentials (or the assumed role) are not for the account the stack names."""


def aws_provider(settings: Settings) -> aws.Provider:
    return aws.Provider(
        "aws",
        region=settings.region,
        # default_tags reach every taggable resource, including ones added later.
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.default_tags),
        # An explicit provider ignores the stack's aws:* config unless it is passed on.
        profile=pulumi.Config("aws").get("profile"),
        # The provider itself refuses to touch any other account.
        allowed_account_ids=[settings.account_id] if settings.account_id else None,
        assume_roles=(
            [
                aws.ProviderAssumeRoleArgs(
                    role_arn=settings.assume_role_arn,
                    session_name=f"pulumi-{settings.prefix}",
                )
            ]
            if settings.assume_role_arn
            else None
        ),
    )


def check_account(settings: Settings, provider: aws.Provider) -> None:
    """Fail before any resource is declared if the caller is in another account.

    It asks through the stack's provider, so it sees the account the deployment would use
    (after any role assumption), not whatever the shell's default credentials say.
    """
    if settings.account_id is None:
        return
    identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider))
    if identity.account_id != settings.account_id:
        via = f" (via {settings.assume_role_arn})" if settings.assume_role_arn else ""
        raise WrongAccountError(
            f"stack '{settings.stack}' deploys to account {settings.account_id} "
            f"(mlops:accountId), but the credentials{via} are for account "
            f"{identity.account_id}. Switch credentials (e.g. AWS_PROFILE) or fix "
            "mlops:accountId; nothing was declared"
        )


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider))
    return identity.account_id
