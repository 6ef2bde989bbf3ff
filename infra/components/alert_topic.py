"""Where the stack's alarms go: one KMS-encrypted SNS topic with e-mail subscriptions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.location import StackLocation
from infra.policies.alerts import alerts_topic_policy


@dataclass(frozen=True)
class AlertTopicArgs:
    where: StackLocation
    emails: Sequence[str]


class AlertTopic(pulumi.ComponentResource):
    topic: aws.sns.Topic
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlopskit:monitoring:AlertTopic", name, None, opts)
        naming = args.where.naming
        self.topic = aws.sns.Topic(
            name,
            name=naming.alerts_topic,
            display_name=f"{naming.prefix} alerts",
            kms_master_key_id=args.where.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy = aws.sns.TopicPolicy(
            name,
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, args.where.account_id).apply(
                lambda v: json.dumps(
                    alerts_topic_policy(
                        topic_arn=v[0],
                        partition=naming.partition,
                        region=naming.region,
                        account_id=v[1],
                        # Every alarm's name starts with the endpoint's; the bare stack
                        # prefix would also match a sibling stack named "<stack>-<more>".
                        alarm_prefix=naming.endpoint,
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Each address gets a confirmation mail; until someone confirms, nothing arrives.
        self.subscriptions = [
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, email in enumerate(args.emails)
        ]
        self.arn = self.topic.arn
        self.register_outputs({"topicArn": self.topic.arn})
