"""Roles of monitoring: the drift, attribution and quality jobs, their pipelines, and the
retrain rule.

The monitoring jobs run *with* network access: they list the window's hour prefixes in S3,
look up the served model in the registry and publish metrics to CloudWatch, none of which
an isolated container can do. Their roles make up for it: each reads only what its job
reads (captured traffic, and labels for the quality job; the served model's archive or its
registered reports; code), writes only monitoring reports, and may publish metrics only
into the kit's namespace.

In a VPC (``vpc``) that access is the VPC's: the pipelines may start the jobs only in the
stack's subnets and security groups, whose endpoints reach S3, the registry and CloudWatch,
and each job role may attach its job there (infra/policies/vpc.py).
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
from infra.policies.vpc import network_policies, with_vpc_conditions
from pipelines.spec import VpcSpec


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
    # "" where the stack declares no such job (the served model has no registered reports).
    attribution_role_arn: str
    quality_role_arn: str
    training_pipeline_name: str
    retrain_rule_name: str
    # Jobs run over several instances (pipelines/shard_steps.py) read back the scratch
    # files of their own runs: the manifest, window and summaries under SHARD_SCRATCH.
    drift_sharded: bool = False
    quality_sharded: bool = False
    # The stack's subnets and security groups; None: jobs run on SageMaker's network.
    vpc: VpcSpec | None = None

    def sagemaker_arn(self, resource: str) -> str:
        return sagemaker_arn(self.partition, self.region, self.account_id, resource)

    @property
    def retrain_rule_arn(self) -> str:
        return (
            f"arn:{self.partition}:events:{self.region}:{self.account_id}:"
            f"rule/{self.retrain_rule_name}"
        )


# <monitoring prefix><endpoint>/<execution id>/shards/...: only a run's scratch files, not
# the reports beside them (pipelines/shard_steps.py writes them there).
SHARD_SCRATCH = f"{CapturePrefix.MONITORING}*/shards/"


def _job_policies(
    scope: MonitoringScope, *, capture: list[str], artifacts: list[str]
) -> dict[str, Document]:
    """Read code, the given capture-bucket and artifacts prefixes; write monitoring reports."""
    return {
        "s3": bucket_access_policy(
            buckets=[scope.artifacts_bucket_arn, scope.capture_bucket_arn],
            read=[
                *(f"{scope.capture_bucket_arn}/{prefix}*" for prefix in capture),
                *(f"{scope.artifacts_bucket_arn}/{prefix}*" for prefix in artifacts),
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
                # The job finds the served model (archive, reports) through its registry record.
                "Sid": "ReadServedModelRecord",
                "Effect": "Allow",
                "Action": "sagemaker:DescribeModelPackage",
                "Resource": scope.sagemaker_arn(f"model-package/{scope.model_package_group}/*"),
            }
        ),
        **network_policies(scope.partition, scope.region, scope.account_id, scope.vpc),
    }


def drift_job_policies(scope: MonitoringScope) -> dict[str, Document]:
    """Capture against the baseline inside the served model's archive."""
    scratch = [SHARD_SCRATCH] if scope.drift_sharded else []
    return _job_policies(
        scope,
        capture=[CapturePrefix.DATA_CAPTURE, *scratch],
        artifacts=[ArtifactPrefix.MODELS],
    )


def attribution_job_policies(scope: MonitoringScope) -> dict[str, Document]:
    """Capture, explained by the served model (its archive) against its registered
    explainability report (under evaluation/)."""
    return _job_policies(
        scope,
        capture=[CapturePrefix.DATA_CAPTURE],
        artifacts=[ArtifactPrefix.MODELS, ArtifactPrefix.EVALUATION],
    )


def quality_job_policies(scope: MonitoringScope) -> dict[str, Document]:
    """Predictions (capture) joined with labels (ground truth), against the registered
    evaluation report (under evaluation/); the bias facets' columns are read from the
    request rows with the feature schema inside the served model's archive."""
    scratch = [SHARD_SCRATCH] if scope.quality_sharded else []
    return _job_policies(
        scope,
        capture=[CapturePrefix.DATA_CAPTURE, CapturePrefix.GROUND_TRUTH, *scratch],
        artifacts=[ArtifactPrefix.MODELS, ArtifactPrefix.EVALUATION],
    )


def _pipeline_policies(scope: MonitoringScope, what: str, roles: list[str]) -> dict[str, Document]:
    jobs = scope.sagemaker_arn(f"processing-job/{PIPELINE_JOB_PREFIX}*")
    sagemaker = document(
        {
            "Sid": f"StartEncrypted{what}Jobs",
            "Effect": "Allow",
            "Action": "sagemaker:CreateProcessingJob",
            "Resource": jobs,
            # Network access is the monitoring jobs' one exception (see module docstring);
            # encryption in transit and at rest with the stack key is still required.
            "Condition": with_vpc_conditions(
                {
                    "Bool": {"sagemaker:InterContainerTrafficEncryption": "true"},
                    "ArnEquals": stack_key_conditions(scope.kms_key_arn),
                },
                scope.vpc,
            ),
        },
        {
            "Sid": f"FollowAndStop{what}Jobs",
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
            "Sid": f"Pass{what}JobRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles[0] if len(roles) == 1 else roles,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    return {"sagemaker": sagemaker, "pass-roles": pass_role}


def drift_pipeline_policies(scope: MonitoringScope) -> dict[str, Document]:
    roles = [scope.drift_role_arn]
    if scope.attribution_role_arn:
        roles.append(scope.attribution_role_arn)
    return _pipeline_policies(scope, "Drift", roles)


def quality_pipeline_policies(scope: MonitoringScope) -> dict[str, Document]:
    return _pipeline_policies(scope, "Quality", [scope.quality_role_arn])


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
