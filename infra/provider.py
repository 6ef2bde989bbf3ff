"""The one AWS provider every resource of the stack uses.

Stacks set ``pulumi:disable-default-providers: [aws]``, so a resource that forgets this
provider fails instead of silently deploying untagged into whatever region the shell has.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config.settings import Settings


def aws_provider(settings: Settings) -> aws.Provider:
    return aws.Provider(
        "aws",
        region=settings.region,
        # default_tags reach every taggable resource, including ones added later.
        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.default_tags),
    )


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider))
    return identity.account_id
