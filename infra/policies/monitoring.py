"""Roles of drift monitoring: the drift job, its pipeline, and the retrain-on-drift rule.

The drift job is the one SageMaker job of the kit that runs *with* network access: it lists
the capture window's hour prefixes in S3, looks up the served model's baseline in the
registry and publishes metrics to CloudWatch, none of which an isolated container can do.
Its role makes up for it: it reads only captured traffic, model archives and code, writes
only drift reports, and may publish metrics only into the kit's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.naming import ArtifactPrefix, CapturePrefix, sagemaker_arn
from infra.policies import Document, document
from infra.policies.execution_role import (
    bucket_access_policy,
    ecr_policy,
    kms_policy,
    metrics_policy,
    sagemaker_logs_policy,
)
from infra.policies.training import PIPELINE_JOB_PREFIX, stack_key_conditions


@dataclass(frozen=True)
class MonitoringScope:
    partition: str
    region: str
    account_id: str
    prefix: str
    kms_key_arn: str
    artifacts_bucket_arn: str
    capture_bucket_arn: str
    model_package_group: str
    metrics_namespace: str
    drift_role_arn: str
    training_pipeline_name: str
    retrain_rule_name: str

    def sagemaker_arn(self, resource: str) -> str:
        return sagemaker_arn(self.partition, self.region, self.account_id, resource)

    @property
    def retrain_rule_arn(self) -> str:
        return (
            f"arn:{self.partition}:events:{self.region}:{self.account_id}:"
            f"rule/{self.retrain_rule_name}"
        )


def drift_job_policies(scope: MonitoringScope) -> dict[str, Document]:
    return {
        "s3": bucket_access_policy(
            buckets=[scope.artifacts_bucket_arn, scope.capture_bucket_arn],
            read=[
                f"{scope.capture_bucket_arn}/{CapturePrefix.DATA_CAPTURE}*",
                f"{scope.artifacts_bucket_arn}/{ArtifactPrefix.MODELS}*",
                f"{scope.artifacts_bucket_arn}/{ArtifactPrefix.CODE}*",
            ],
            write=[f"{scope.capture_bucket_arn}/{CapturePrefix.MONITORING}*"],
        ),
        "kms": kms_policy(scope),
        "logs": sagemaker_logs_policy(scope, ["ProcessingJobs"]),
        "ecr": ecr_policy(scope),
        "metrics": metrics_policy(scope.metrics_namespace),
        "registry": document(
            {
                # The job finds the served model's baseline through its registry record.
                "Sid": "ReadServedModelRecord",
                "Effect": "Allow",
                "Action": "sagemaker:DescribeModelPackage",
                "Resource": scope.sagemaker_arn(f"model-package/{scope.model_package_group}/*"),
            }
        ),
    }


def drift_pipeline_policies(scope: MonitoringScope) -> dict[str, Document]:
    jobs = scope.sagemaker_arn(f"processing-job/{PIPELINE_JOB_PREFIX}*")
    sagemaker = document(
        {
            "Sid": "StartEncryptedDriftJobs",
            "Effect": "Allow",
            "Action": "sagemaker:CreateProcessingJob",
            "Resource": jobs,
            # Network access is the drift job's one exception (see module docstring);
            # encryption in transit and at rest with the stack key is still required.
            "Condition": {
                "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
                "ArnEquals": stack_key_conditions(scope.kms_key_arn),
            },
        },
        {
            "Sid": "FollowAndStopDriftJobs",
            "Effect": "Allow",
            "Action": [
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:AddTags",
            ],
            "Resource": jobs,
        },
    )
    pass_role = document(
        {
            "Sid": "PassDriftJobRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": scope.drift_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    return {"sagemaker": sagemaker, "pass-roles": pass_role}


def retrain_trust_policy(scope: MonitoringScope) -> Document:
    return document(
        {
            "Sid": "EventBridgeRuleAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": scope.account_id,
                    "aws:SourceArn": scope.retrain_rule_arn,
                }
            },
        }
    )


def retrain_policies(scope: MonitoringScope) -> dict[str, Document]:
    return {
        "start-training": document(
            {
                "Sid": "StartTrainingPipeline",
                "Effect": "Allow",
                "Action": "sagemaker:StartPipelineExecution",
                "Resource": scope.sagemaker_arn(f"pipeline/{scope.training_pipeline_name}"),
            }
        )
    }
