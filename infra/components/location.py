"""Where a stack's parts live: one value the environment builds once and hands to each part."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.naming import Naming


@dataclass(frozen=True)
class StackLocation:
    naming: Naming
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    data_bucket: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
