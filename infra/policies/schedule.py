"""EventBridge Scheduler starting one SageMaker pipeline: the scheduler role's policies."""

from __future__ import annotations

from dataclasses import dataclass

from infra.naming import sagemaker_arn
from infra.policies import Document, Statement, document

# EventBridge Scheduler's group for schedules that name none.
DEFAULT_SCHEDULE_GROUP = "default"


@dataclass(frozen=True)
class ScheduleScope:
    partition: str
    region: str
    account_id: str
    kms_key_arn: str
    pipeline_name: str
    schedule_name: str

    @property
    def pipeline_arn(self) -> str:
        return sagemaker_arn(
            self.partition, self.region, self.account_id, f"pipeline/{self.pipeline_name}"
        )

    @property
    def schedule_group_arn(self) -> str:
        return (
            f"arn:{self.partition}:scheduler:{self.region}:{self.account_id}:"
            f"schedule-group/{DEFAULT_SCHEDULE_GROUP}"
        )

    @property
    def schedule_arn(self) -> str:
        return (
            f"arn:{self.partition}:scheduler:{self.region}:{self.account_id}:"
            f"schedule/{DEFAULT_SCHEDULE_GROUP}/{self.schedule_name}"
        )


def scheduler_trust_policy(scope: ScheduleScope) -> Document:
    # Confused-deputy guard as AWS documents it: the source ARN is the schedule group's.
    return document(
        {
            "Sid": "SchedulerAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": scope.account_id,
                    "aws:SourceArn": scope.schedule_group_arn,
                }
            },
        }
    )


def scheduler_policies(scope: ScheduleScope) -> dict[str, Document]:
    start: Statement = {
        "Sid": "StartThisPipeline",
        "Effect": "Allow",
        "Action": "sagemaker:StartPipelineExecution",
        "Resource": scope.pipeline_arn,
    }
    # The schedule is encrypted with the stack's key; Scheduler decrypts it as this role.
    decrypt: Statement = {
        "Sid": "DecryptThisSchedule",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": scope.kms_key_arn,
        "Condition": {
            "StringEquals": {"kms:EncryptionContext:aws:scheduler:schedule:arn": scope.schedule_arn}
        },
    }
    return {"start-pipeline": document(start), "kms": document(decrypt)}
