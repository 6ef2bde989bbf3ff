"""The alerts topic's policy: of AWS services, only this endpoint's alarms may publish;
account principals keep AWS's default access (their IAM policies decide); never without TLS.

The account statement carries a condition on the caller's account, as AWS's default topic
statement does (it uses the legacy ``AWS:SourceOwner``, which is not in the IAM reference;
``aws:PrincipalAccount`` is the documented global key). A grant to an account principal
with no condition is what checkov's CKV_AWS_385 flags as possible cross-account access.
"""

from __future__ import annotations

from infra.policies import Document, document


def alerts_topic_policy(
    *, topic_arn: str, partition: str, region: str, account_id: str, alarm_prefix: str
) -> Document:
    return document(
        {
            "Sid": "AccountManagesTopic",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": [
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
                "sns:Publish",
            ],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:PrincipalAccount": account_id}},
        },
        {
            "Sid": "StackAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:"
                    f"alarm:{alarm_prefix}-*"
                },
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
