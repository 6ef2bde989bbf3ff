"""VPC endpoint policies of the stack's private network, and the flow-log role's policies.

An endpoint policy is a boundary, not a grant: a request through the endpoint must pass it
*and* the caller's IAM policy. Each one here names what the stack's jobs and models reach
(this stack's buckets, registry, model cards, endpoint, log groups, metrics namespace, keys
and image repositories, plus the shared registry's), so stolen credentials used from inside
the VPC cannot move data to anyone else's resources.

All nine interface services and S3 accept endpoint policies: AWS's table "AWS services that
integrate with AWS PrivateLink"
(https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html)
and each service's own page (SageMaker API and Runtime:
https://docs.aws.amazon.com/sagemaker/latest/dg/interface-vpc-endpoint.html; ECR:
https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html; EventBridge:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-related-service-vpc.html;
STS, CloudWatch Logs and Monitoring, KMS: their "interface VPC endpoints" pages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.naming import sagemaker_arn
from infra.policies import Document, Statement, document

# Interface endpoints the jobs and models need (service-name suffix), in a stable order.
INTERFACE_SERVICES = (
    "sagemaker.api",
    "sagemaker.runtime",
    "sts",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "kms",
    "events",
)
GATEWAY_SERVICE = "s3"
# Services whose endpoint takes a policy (see the module docstring): all of them.
POLICY_SERVICES = (GATEWAY_SERVICE, *INTERFACE_SERVICES)
# <registry account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag][@sha256:digest]
_IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_ANYONE = "*"


@dataclass(frozen=True)
class ImageRepository:
    account_id: str
    region: str
    name: str

    def arn(self, partition: str) -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account_id}:repository/{self.name}"


def image_repository(image_uri: str) -> ImageRepository:
    """The ECR repository an image URI pulls from; a clear error for anything else."""
    match = _IMAGE_URI.match(image_uri)
    if match is None:
        raise ValueError(
            f"{image_uri!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag])"
        )
    return ImageRepository(match["account"], match["region"], match["repository"])


def ecr_layer_bucket(region: str) -> str:
    """Where ECR keeps image layers: a pull through the VPC downloads them from this bucket
    over the S3 gateway endpoint ("Minimum Amazon S3 bucket permissions",
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html)."""
    return f"prod-{region}-starport-layer-bucket"


@dataclass(frozen=True)
class EndpointScope:
    partition: str
    region: str
    account_id: str
    prefix: str
    metrics_namespace: str
    endpoint_name: str
    # Bucket names: the stack's, then any shared registry's.
    bucket_names: tuple[str, ...]
    repositories: tuple[ImageRepository, ...]
    extra_kms_key_arns: tuple[str, ...] = ()
    # Shared-registry model package groups (their packages are derived) or other ARNs.
    extra_sagemaker_arns: tuple[str, ...] = ()

    def sagemaker(self, resource: str) -> str:
        return sagemaker_arn(self.partition, self.region, self.account_id, resource)

    def stack_named(self, resource_type: str) -> str:
        """This stack's SageMaker resources of one type: every name starts with the prefix
        (SageMaker ARNs carry names in lower case)."""
        return self.sagemaker(f"{resource_type}/{self.prefix.lower()}-*")


def _allow(sid: str, actions: list[str], resources: list[str], **condition: object) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": _ANYONE,
        "Action": actions,
        "Resource": resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _this_account(scope: EndpointScope) -> dict[str, dict[str, str]]:
    return {"StringEquals": {"aws:PrincipalAccount": scope.account_id}}


def s3_endpoint_policy(scope: EndpointScope) -> Document:
    buckets = [f"arn:{scope.partition}:s3:::{name}" for name in scope.bucket_names]
    return document(
        _allow("StackBuckets", ["s3:ListBucket", "s3:GetBucketLocation"], buckets),
        _allow(
            "StackObjects",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:AbortMultipartUpload"],
            [f"{bucket}/*" for bucket in buckets],
        ),
        # ECR signs the layer download itself, so the caller is not this account's role:
        # AWS's minimal statement names the bucket only.
        _allow(
            "EcrImageLayers",
            ["s3:GetObject"],
            [f"arn:{scope.partition}:s3:::{ecr_layer_bucket(scope.region)}/*"],
        ),
    )


def _shared_registry_arns(scope: EndpointScope) -> list[str]:
    """Each shared group, and the packages in it (DescribeModelPackage names a package)."""
    arns: list[str] = []
    for arn in scope.extra_sagemaker_arns:
        arns.append(arn)
        head, marker, group = arn.partition(":model-package-group/")
        if marker:
            arns.append(f"{head}:model-package/{group}/*")
    return arns


def sagemaker_api_policy(scope: EndpointScope) -> Document:
    """What code inside the VPC calls: the served model's registry record (monitoring jobs),
    the model card (the card job), and reads of the stack's own resources."""
    statements = [
        _allow(
            "ReadStackResources",
            [
                "sagemaker:DescribeModelPackage",
                "sagemaker:ListModelPackages",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:DescribeModelCard",
                "sagemaker:DescribeEndpoint",
            ],
            [
                scope.stack_named("model-package"),
                scope.stack_named("model-package-group"),
                scope.stack_named("model-card"),
                scope.stack_named("endpoint"),
            ],
        ),
        _allow(
            "WriteStackModelCards",
            ["sagemaker:CreateModelCard", "sagemaker:UpdateModelCard"],
            [scope.stack_named("model-card")],
        ),
    ]
    shared = _shared_registry_arns(scope)
    if shared:
        statements.append(
            _allow(
                "ReadSharedRegistry",
                [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:ListModelPackages",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                shared,
            )
        )
    return document(*statements)


def sagemaker_runtime_policy(scope: EndpointScope) -> Document:
    return document(
        _allow(
            "InvokeStackEndpoint",
            ["sagemaker:InvokeEndpoint"],
            [scope.sagemaker(f"endpoint/{scope.endpoint_name.lower()}")],
        )
    )


def sts_policy(scope: EndpointScope) -> Document:
    roles = f"arn:{scope.partition}:iam::{scope.account_id}:role/*"
    return document(
        _allow("WhoAmI", ["sts:GetCallerIdentity"], ["*"], **_this_account(scope)),
        _allow("AssumeOwnRoles", ["sts:AssumeRole"], [roles], **_this_account(scope)),
    )


def logs_policy(scope: EndpointScope) -> Document:
    base = f"arn:{scope.partition}:logs:{scope.region}:{scope.account_id}:log-group:"
    groups = [f"{base}/aws/sagemaker/*", f"{base}/mlops/{scope.prefix}/*"]
    return document(
        _allow("StackLogGroups", ["logs:CreateLogGroup", "logs:DescribeLogStreams"], groups),
        _allow(
            "StackLogStreams",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{group}:log-stream:*" for group in groups],
        ),
    )


def monitoring_policy(scope: EndpointScope) -> Document:
    return document(
        # Metrics have no ARNs: the namespace condition is the scope.
        _allow(
            "PublishStackMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            StringEquals={"cloudwatch:namespace": scope.metrics_namespace},
        ),
        # Reads (AWS/SageMaker's endpoint and job metrics) have neither ARNs nor a namespace
        # key in IAM's reference: only this account's principals may make them.
        _allow(
            "ReadMetrics",
            [
                "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:ListMetrics",
            ],
            ["*"],
            **_this_account(scope),
        ),
    )


def ecr_policy(scope: EndpointScope) -> Document:
    """For both ecr.api and ecr.dkr: a pull of the listed images, and the login token."""
    repositories = sorted({r.arn(scope.partition) for r in scope.repositories})
    return document(
        _allow("Login", ["ecr:GetAuthorizationToken"], ["*"], **_this_account(scope)),
        _allow(
            "PullStackImages",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            repositories,
        ),
    )


def kms_policy(scope: EndpointScope) -> Document:
    """This account's keys in this region (the stack's key is declared after the network,
    so it cannot be named), and the shared registry's key."""
    keys = [
        f"arn:{scope.partition}:kms:{scope.region}:{scope.account_id}:key/*",
        *scope.extra_kms_key_arns,
    ]
    return document(
        _allow(
            "UseAccountKeys",
            ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            keys,
        )
    )


def events_policy(scope: EndpointScope) -> Document:
    bus = f"arn:{scope.partition}:events:{scope.region}:{scope.account_id}:event-bus/*"
    return document(_allow("PutAccountEvents", ["events:PutEvents"], [bus], **_this_account(scope)))


def endpoint_policies(scope: EndpointScope) -> dict[str, Document]:
    """Service-name suffix -> its endpoint's policy, for every endpoint of the network."""
    ecr = ecr_policy(scope)
    return {
        "s3": s3_endpoint_policy(scope),
        "sagemaker.api": sagemaker_api_policy(scope),
        "sagemaker.runtime": sagemaker_runtime_policy(scope),
        "sts": sts_policy(scope),
        "logs": logs_policy(scope),
        "monitoring": monitoring_policy(scope),
        "ecr.api": ecr,
        "ecr.dkr": ecr,
        "kms": kms_policy(scope),
        "events": events_policy(scope),
    }


# --- flow logs ------------------------------------------------------------------------------

FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"


def flow_logs_trust_policy(partition: str, region: str, account_id: str) -> Document:
    """VPC Flow Logs may assume the role only for this account's flow logs (confused
    deputy: https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html)."""
    return document(
        {
            "Sid": "FlowLogsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": FLOW_LOGS_SERVICE},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"
                },
            },
        }
    )


def flow_logs_policy(log_group_arn: str) -> Document:
    """Write to the one flow-log group, which Pulumi creates (encrypted): no CreateLogGroup,
    and not the account-wide DescribeLogGroups of AWS's example role
    (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html)."""
    group = log_group_arn.removesuffix(":*")
    return document(
        {
            "Sid": "DescribeFlowLogGroup",
            "Effect": "Allow",
            "Action": "logs:DescribeLogStreams",
            "Resource": group,
        },
        {
            "Sid": "WriteFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{group}:log-stream:*",
        },
    )
