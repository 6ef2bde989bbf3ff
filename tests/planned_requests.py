"""The AWS requests a planned stack will cause at run time, derived from the plan itself.

Each ``Simulated`` request carries the policies AWS would consult: the caller's identity
policies (its role's inline policies) and the target's resource policy (bucket policy, key
policy, topic policy, or the assumed role's trust policy). Values come from the planned
resources: a step's job request from the pipeline definition's Arguments (keys, isolation,
role), S3 keys from its inputs and outputs, schedules and rules from their targets. What the
plan cannot say (execution IDs, job-name suffixes, dates) is a fixed sample.

What services put in a request, where AWS documents it:
- SageMaker: sagemaker:VolumeKmsKey / OutputKmsKey / NetworkIsolation /
  InterContainerTrafficEncryption are the request's own fields (Service Authorization
  Reference, SageMaker condition keys); jobs read and write S3 as their role, uploads with
  SSE-KMS headers naming the output KmsKeyId.
- S3 calls KMS on the caller's behalf: kms:ViaService s3.<region>.amazonaws.com, encryption
  context aws:s3:arn (the bucket ARN, with S3 Bucket Keys on).
- Service principals assuming roles or writing to resources set aws:SourceAccount and
  aws:SourceArn (the schedule group, the rule, the source bucket, the alarm).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.plan.mocks import RecordedResource, mock_ec2_id
from infra.plan.runner import Plan
from infra.policies.analysis.evaluation import Policy, Request, ResourcePolicy

EXECUTION_ID = "a1b2c3d4e5f6"
JOB_TOKEN = "x9y8z7w6v5"
SAMPLE_HOUR = "2026/11/30/08"
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}

PIPELINE = "aws:sagemaker/pipeline:Pipeline"
SCHEDULE = "aws:scheduler/schedule:Schedule"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


@dataclass(frozen=True)
class Simulated:
    why: str  # what in the stack causes it, e.g. "training pipeline, step Train"
    request: Request
    identity: tuple[Policy, ...] = ()
    resource: ResourcePolicy | None = None
    # The VPC endpoint the request goes through, whose policy must allow it too.
    endpoint: ResourcePolicy | None = None

    def __str__(self) -> str:
        return f"{self.why}: {self.request}"


@dataclass
class Account:
    """One plan's policies and names, indexed the way requests look them up."""

    plan: Plan
    # Accounts whose buckets, keys and registry this one reads (a shared tooling account).
    shared: tuple[Account, ...] = ()
    partition: str = field(init=False)
    region: str = field(init=False)
    account: str = field(init=False)

    def __post_init__(self) -> None:
        # Partition, region and account as the stack's key ARN (a bucket's default key) has them.
        key_arn = self.plan.of_type(BUCKET_SSE)[0].inputs["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["kmsMasterKeyId"]
        _, self.partition, _, self.region, self.account, _ = key_arn.split(":", 5)
        self.role_policies: dict[str, list[Policy]] = defaultdict(list)
        for policy in self.plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            name = f"{policy.inputs['role']}/{policy.inputs['name']}"
            self.role_policies[policy.inputs["role"]].append(
                Policy(name, _doc(policy.inputs["policy"]))
            )
        self.trust = {
            r.inputs["name"]: _doc(r.inputs["assumeRolePolicy"])
            for r in self.plan.of_type("aws:iam/role:Role")
        }
        self.bucket_policies = {
            p.inputs["bucket"]: _doc(p.inputs["policy"])
            for p in self.plan.of_type("aws:s3/bucketPolicy:BucketPolicy")
        }
        self.bucket_keys = {
            c.inputs["bucket"]: c.inputs["rules"][0]["applyServerSideEncryptionByDefault"][
                "kmsMasterKeyId"
            ]
            for c in self.plan.of_type(BUCKET_SSE)
        }
        (key,) = self.plan.of_type("aws:kms/key:Key")
        self.key_policy = _doc(key.inputs["policy"])
        self.registry_policies = {
            p.inputs["modelPackageGroupName"]: _doc(p.inputs["resourcePolicy"])
            for p in self.plan.of_type(
                "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
            )
        }
        self.topic_policies = {
            p.inputs["arn"]: _doc(p.inputs["policy"])
            for p in self.plan.of_type("aws:sns/topicPolicy:TopicPolicy")
        }
        # Service (s3, sagemaker.api, monitoring, ...) -> (endpoint ID, policy), and the
        # roles whose jobs run in the VPC (a pass over the pipelines records them).
        self.endpoints: dict[str, tuple[str, dict[str, Any]]] = {
            _endpoint_service(e.inputs["serviceName"]): (
                mock_ec2_id("vpce", e.name),
                _doc(e.inputs.get("policy") or "{}"),
            )
            for e in self.plan.of_type(VPC_ENDPOINT)
        }
        self.vpc_roles: set[str] = set()
        # Model package group -> the archive its RegisterModel step registers, and the
        # reports it attaches (ModelMetrics section -> URI), read off the training
        # pipeline's definition (a pass over its steps records them).
        self.model_archives: dict[str, str] = {}
        self.model_reports: dict[str, dict[str, str]] = {}
        for pipeline in training_first(self.plan.of_type(PIPELINE)):
            for _ in pipeline_requests(self, pipeline):
                pass

    def owner(self, bucket: str) -> Account:
        return next(a for a in (self, *self.shared) if bucket in a.bucket_policies)

    def _account_owning(self, arn: str) -> Account | None:
        return next((a for a in (self, *self.shared) if a.account == arn.split(":")[4]), None)

    def archive_of(self, package_arn: str) -> str | None:
        group = package_arn.split(":model-package/", 1)[1].rsplit("/", 1)[0]
        owner = self._account_owning(package_arn)
        return None if owner is None else owner.model_archives.get(group)

    def reports_of(self, package_arn: str) -> dict[str, str] | None:
        """ModelMetrics section (ModelQuality, Bias, Explainability) -> report URI; None
        for a registry no planned account declares."""
        group = package_arn.split(":model-package/", 1)[1].rsplit("/", 1)[0]
        owner = self._account_owning(package_arn)
        return None if owner is None else owner.model_reports[group]

    def registry_policy(self, package_arn: str) -> ResourcePolicy | None:
        """The model package group's resource policy (cross-account sharing), if any."""
        group = package_arn.split(":model-package/", 1)[1].rsplit("/", 1)[0]
        owner = self._account_owning(package_arn)
        document = None if owner is None else owner.registry_policies.get(group)
        if owner is None or document is None:
            return None
        return ResourcePolicy(f"{group}/policy", document, account=owner.account)

    def key_policy_of(self, key_arn: str) -> ResourcePolicy | None:
        """The policy of a key a planned stack declares; None for any other key."""
        owner = next((a for a in (self, *self.shared) if key_arn in a.bucket_keys.values()), None)
        if owner is None:
            return None
        return ResourcePolicy(
            f"{owner.plan.stack} key/policy",
            owner.key_policy,
            account=owner.account,
            must_grant=True,
        )

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def identity(self, role_arn: str) -> tuple[Policy, ...]:
        return tuple(self.role_policies[_role_name(role_arn)])

    def assume(self, why: str, service: str, role_arn: str, **context: str) -> Simulated:
        trust = ResourcePolicy(
            f"{_role_name(role_arn)}/trust",
            self.trust[_role_name(role_arn)],
            account=self.account,
            must_grant=True,
        )
        return Simulated(why, Request(service, "sts:AssumeRole", role_arn, context), (), trust)

    def via_vpc(self, principal: str, service: str) -> tuple[dict[str, str], ResourcePolicy | None]:
        """What a call from a job in the VPC carries (aws:SourceVpce for S3, which goes
        through the gateway endpoint) and the endpoint policy it must pass; nothing for a
        caller outside the VPC or a service with no endpoint in the plan."""
        if principal not in self.vpc_roles or service not in self.endpoints:
            return {}, None
        endpoint_id, policy = self.endpoints[service]
        context = {"aws:SourceVpce": endpoint_id} if service == "s3" else {}
        return context, ResourcePolicy(
            f"vpc endpoint {service}/policy", policy, account=self.account, must_grant=True
        )

    def bucket_policy(self, bucket: str) -> ResourcePolicy:
        owner = self.owner(bucket)
        return ResourcePolicy(
            f"{bucket}/policy", owner.bucket_policies[bucket], account=owner.account
        )


def _endpoint_service(service_name: str) -> str:
    """com.amazonaws.<region>.sagemaker.api -> sagemaker.api."""
    return service_name.split(".", 3)[3]


def _doc(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def _bucket_arn(where: Account, bucket: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}"


def _account_of(arn: str) -> str | None:
    return arn.split(":")[4] if arn.startswith("arn:") else None


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[1]


def _s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# --- S3 through KMS -------------------------------------------------------------------------


def s3_read(
    where: Account, why: str, principal: str, uri: str, identity: tuple[Policy, ...]
) -> Iterator[Simulated]:
    """GetObject of ``uri`` (a prefix gets a sample object under it) and the Decrypt S3
    asks KMS for on the caller's behalf."""
    bucket, key = _s3(uri)
    vpc, endpoint = where.via_vpc(principal, "s3")
    if not key or key.endswith("/") or "." not in key.rsplit("/", 1)[-1]:
        yield Simulated(
            f"{why} (list)",
            Request(
                principal,
                "s3:ListBucket",
                _bucket_arn(where, bucket),
                {**TLS, **vpc, "s3:prefix": key},
            ),
            identity,
            where.bucket_policy(bucket),
            endpoint,
        )
        key = f"{key.rstrip('/')}/part-00000"
    yield Simulated(
        why,
        Request(
            principal, "s3:GetObject", f"arn:{where.partition}:s3:::{bucket}/{key}", {**TLS, **vpc}
        ),
        identity,
        where.bucket_policy(bucket),
        endpoint,
    )
    yield _kms(where, why, principal, "kms:Decrypt", bucket, identity)


def s3_write(
    where: Account,
    why: str,
    principal: str,
    uri: str,
    identity: tuple[Policy, ...],
    *,
    kms_key_id: str | None,
) -> Iterator[Simulated]:
    """PutObject under ``uri``: with SSE-KMS headers when the writer names a key, none
    when it relies on the bucket's default encryption."""
    bucket, key = _s3(uri)
    vpc, endpoint = where.via_vpc(principal, "s3")
    headers = (
        {
            "s3:x-amz-server-side-encryption": "aws:kms",
            "s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_id,
        }
        if kms_key_id
        else {}
    )
    yield Simulated(
        why,
        Request(
            principal,
            "s3:PutObject",
            f"{_bucket_arn(where, bucket)}/{key.rstrip('/')}/part",
            {**TLS, **vpc, **headers},
        ),
        identity,
        where.bucket_policy(bucket),
        endpoint,
    )
    yield _kms(where, why, principal, "kms:GenerateDataKey", bucket, identity, key=kms_key_id)


def _kms(
    where: Account,
    why: str,
    principal: str,
    action: str,
    bucket: str,
    identity: tuple[Policy, ...],
    *,
    key: str | None = None,
) -> Simulated:
    """S3 asks KMS for the key the request names, else for the bucket's default key."""
    context = {
        "kms:ViaService": f"s3.{where.region}.amazonaws.com",
        "kms:CallerAccount": _account_of(principal) or where.account,
        "kms:EncryptionContext:aws:s3:arn": _bucket_arn(where, bucket),
    }
    key_arn = key or where.owner(bucket).bucket_keys[bucket]
    return Simulated(
        f"{why} (S3 asks KMS)",
        Request(principal, action, key_arn, context),
        identity,
        where.key_policy_of(key_arn),
    )


# --- pipeline definitions -------------------------------------------------------------------


@dataclass
class Definition:
    """A planned pipeline definition, with expressions resolved to one sample execution."""

    raw: Mapping[str, Any]
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Any]:
        return {p["Name"]: p.get("DefaultValue") for p in self.raw["Parameters"]}

    def steps(self) -> Iterator[Mapping[str, Any]]:
        def walk(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
            for step in steps:
                yield step
                yield from walk(step.get("Arguments", {}).get("IfSteps", []))
                yield from walk(step.get("Arguments", {}).get("ElseSteps", []))

        return walk(self.raw["Steps"])

    def value(self, expression: Any) -> Any:
        if not isinstance(expression, dict):
            return expression
        if "Std:Join" in expression:
            join = expression["Std:Join"]
            return join["On"].join(str(self.value(v)) for v in join["Values"])
        reference = expression["Get"]
        if reference.startswith("Parameters."):
            return self.parameters[reference.removeprefix("Parameters.")]
        if reference == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        return self.outputs[reference]


def job_name(step: Mapping[str, Any]) -> str:
    # SageMaker Pipelines names step jobs pipelines-<execution>-<step>-<token>; ARNs are lower case.
    return f"pipelines-{EXECUTION_ID}-{step['Name']}-{JOB_TOKEN}".lower()


def _job_context(
    *,
    volume_key: str | None,
    output_key: str | None,
    flags: Mapping[str, Any],
    instance_type: str,
    stopping: Mapping[str, Any],
) -> dict[str, Any]:
    """The condition keys a Create*Job request carries: each from the request field it
    names; a field the definition leaves out is absent from the request too."""
    context = {
        "sagemaker:VolumeKmsKey": volume_key,
        "sagemaker:OutputKmsKey": output_key,
        "sagemaker:InstanceTypes": (instance_type,),
        "sagemaker:MaxRuntimeInSeconds": str(stopping["MaxRuntimeInSeconds"]),
    }
    vpc = flags.get("VpcConfig")
    if vpc:
        context["sagemaker:VpcSubnets"] = tuple(vpc["Subnets"])
        context["sagemaker:VpcSecurityGroupIds"] = tuple(vpc["SecurityGroupIds"])
    for key, field_name in (
        ("sagemaker:NetworkIsolation", "EnableNetworkIsolation"),
        ("sagemaker:InterContainerTrafficEncryption", "EnableInterContainerTrafficEncryption"),
    ):
        if field_name in flags:
            context[key] = str(flags[field_name]).lower()
    return context


def pipeline_requests(where: Account, pipeline: RecordedResource) -> Iterator[Simulated]:
    name = pipeline.inputs["pipelineName"]
    pipeline_role = pipeline.inputs["roleArn"]
    definition = Definition(json.loads(pipeline.inputs["pipelineDefinition"]))
    yield where.assume(f"pipeline {name}", "sagemaker.amazonaws.com", pipeline_role)
    for step in definition.steps():
        why = f"pipeline {name}, step {step['Name']}"
        kind, arguments = step["Type"], step.get("Arguments", {})
        if kind == "Processing":
            yield from _processing_step(where, why, pipeline_role, definition, step)
        elif kind == "Training":
            yield from _training_step(where, why, pipeline_role, definition, step)
        elif kind == "Tuning":
            yield from _tuning_step(where, why, pipeline_role, definition, step)
        elif kind == "RegisterModel":
            group = arguments["ModelPackageGroupName"]
            (container,) = arguments["InferenceSpecification"]["Containers"]
            where.model_archives[group.lower()] = definition.value(container["ModelDataUrl"])
            where.model_reports[group.lower()] = {
                section: definition.value(report["S3Uri"])
                for section, reports in arguments.get("ModelMetrics", {}).items()
                for report in reports.values()
            }
            package = where.arn("sagemaker", f"model-package/{group.lower()}/1")
            definition.outputs[f"Steps.{step['Name']}.ModelPackageArn"] = package
            yield Simulated(
                why,
                Request(
                    pipeline_role,
                    "sagemaker:CreateModelPackage",
                    package,
                    {
                        "sagemaker:ModelApprovalStatus": definition.value(
                            arguments["ModelApprovalStatus"]
                        )
                    },
                ),
                where.identity(pipeline_role),
            )
        for property_file in step.get("PropertyFiles", []):
            output = definition.outputs[
                f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{property_file['OutputName']}'].S3Output.S3Uri"
            ]
            yield from s3_read(
                where,
                f"{why}, property file",
                pipeline_role,
                f"{output}/{property_file['FilePath']}",
                where.identity(pipeline_role),
            )


@dataclass(frozen=True)
class JobLaunch:
    """What a pipeline step asks SageMaker for: a job, its role, image and log group."""

    action: str
    job: str
    job_arn: str
    context: dict[str, Any]
    role_arn: str
    image: str
    log_group: str


def _launch(where: Account, why: str, pipeline_role: str, launch: JobLaunch) -> Iterator[Simulated]:
    """The pipeline role starts, tags and passes the role to the job; the job pulls its image
    and writes its logs under its own role."""
    pipeline = where.identity(pipeline_role)
    present = {k: v for k, v in launch.context.items() if v is not None}
    yield Simulated(why, Request(pipeline_role, launch.action, launch.job_arn, present), pipeline)
    # Pipelines tags the jobs it starts (sagemaker:pipeline-execution-arn and others).
    tagging = {"sagemaker:TaggingAction": launch.action.split(":")[1]}
    yield Simulated(
        f"{why} (tags)",
        Request(pipeline_role, "sagemaker:AddTags", launch.job_arn, tagging),
        pipeline,
    )
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    yield Simulated(
        f"{why} (pass role)",
        Request(pipeline_role, "iam:PassRole", launch.role_arn, passed),
        pipeline,
    )
    role_arn = launch.role_arn
    if "sagemaker:VpcSubnets" in present:
        where.vpc_roles.add(role_arn)
    yield where.assume(f"{why} (job assumes its role)", "sagemaker.amazonaws.com", role_arn)
    identity = where.identity(role_arn)
    registry, _, repository = launch.image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    repository_arn = (
        f"arn:{where.partition}:ecr:{region}:{account}:repository/{repository.split(':')[0]}"
    )
    yield Simulated(f"{why} (image)", Request(role_arn, "ecr:GetAuthorizationToken", "*"), identity)
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        yield Simulated(f"{why} (image)", Request(role_arn, action, repository_arn), identity)
    stream = where.arn("logs", f"log-group:/aws/sagemaker/{launch.log_group}")
    stream += f":log-stream:{launch.job}/algo-1"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        yield Simulated(f"{why} (logs)", Request(role_arn, action, stream), identity)


def _processing_step(
    where: Account, why: str, pipeline_role: str, definition: Definition, step: Mapping[str, Any]
) -> Iterator[Simulated]:
    arguments, job = step["Arguments"], job_name(step)
    cluster = arguments["ProcessingResources"]["ClusterConfig"]
    network = arguments.get("NetworkConfig", {})
    output_config = arguments.get("ProcessingOutputConfig", {})
    role = arguments["RoleArn"]
    launch = JobLaunch(
        action="sagemaker:CreateProcessingJob",
        job=job,
        job_arn=where.arn("sagemaker", f"processing-job/{job}"),
        context=_job_context(
            volume_key=cluster.get("VolumeKmsKeyId"),
            output_key=output_config.get("KmsKeyId"),
            flags=network,
            instance_type=definition.value(cluster["InstanceType"]),
            stopping=arguments["StoppingCondition"],
        ),
        role_arn=role,
        image=arguments["AppSpecification"]["ImageUri"],
        log_group="ProcessingJobs",
    )
    yield from _launch(where, why, pipeline_role, launch)
    identity = where.identity(role)
    for entry in arguments.get("ProcessingInputs", []):
        uri = definition.value(entry["S3Input"]["S3Uri"])
        yield from s3_read(where, f"{why}, input {entry['InputName']}", role, uri, identity)
    for entry in output_config.get("Outputs", []):
        uri = definition.value(entry["S3Output"]["S3Uri"])
        definition.outputs[
            f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{entry['OutputName']}'].S3Output.S3Uri"
        ] = uri
        yield from s3_write(
            where,
            f"{why}, output {entry['OutputName']}",
            role,
            uri,
            identity,
            kms_key_id=output_config.get("KmsKeyId"),
        )
    yield from _container_requests(
        where, why, role, arguments["AppSpecification"].get("ContainerArguments", []), definition
    )


def _training_step(
    where: Account, why: str, pipeline_role: str, definition: Definition, step: Mapping[str, Any]
) -> Iterator[Simulated]:
    arguments, job = step["Arguments"], job_name(step)
    resources, output = arguments["ResourceConfig"], arguments["OutputDataConfig"]
    role = arguments["RoleArn"]
    launch = JobLaunch(
        action="sagemaker:CreateTrainingJob",
        job=job,
        job_arn=where.arn("sagemaker", f"training-job/{job}"),
        context=_job_context(
            volume_key=resources.get("VolumeKmsKeyId"),
            output_key=output.get("KmsKeyId"),
            flags=arguments,
            instance_type=definition.value(resources["InstanceType"]),
            stopping=arguments["StoppingCondition"],
        ),
        role_arn=role,
        image=arguments["AlgorithmSpecification"]["TrainingImage"],
        log_group="TrainingJobs",
    )
    yield from _launch(where, why, pipeline_role, launch)
    identity = where.identity(role)
    for channel in arguments.get("InputDataConfig", []):
        uri = definition.value(channel["DataSource"]["S3DataSource"]["S3Uri"])
        yield from s3_read(where, f"{why}, channel {channel['ChannelName']}", role, uri, identity)
    archive = f"{output['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
    definition.outputs[f"Steps.{step['Name']}.ModelArtifacts.S3ModelArtifacts"] = archive
    yield from s3_write(
        where, f"{why}, model", role, archive, identity, kms_key_id=output.get("KmsKeyId")
    )


def tuning_job_name(step: Mapping[str, Any]) -> str:
    # Pipelines documents no name for the tuning jobs it starts; names are 1-32 characters.
    return f"{EXECUTION_ID}-{step['Name']}-{JOB_TOKEN}"[:32].lower()


def _tuning_step(
    where: Account, why: str, pipeline_role: str, definition: Definition, step: Mapping[str, Any]
) -> Iterator[Simulated]:
    """The pipeline role starts the tuning job (the condition keys from its training job
    definition), passes the job role and follows the search; one of its training jobs,
    named <tuning job>-001-<token> as SageMaker names them, runs as that role."""
    tuning_job = tuning_job_name(step)
    job_definition = step["Arguments"]["TrainingJobDefinition"]
    resources, output = job_definition["ResourceConfig"], job_definition["OutputDataConfig"]
    role = job_definition["RoleArn"]
    training_job = f"{tuning_job}-001-{JOB_TOKEN[:8]}"
    tuning_arn = where.arn("sagemaker", f"hyper-parameter-tuning-job/{tuning_job}")
    launch = JobLaunch(
        action="sagemaker:CreateHyperParameterTuningJob",
        job=training_job,
        job_arn=tuning_arn,
        context=_job_context(
            volume_key=resources.get("VolumeKmsKeyId"),
            output_key=output.get("KmsKeyId"),
            flags=job_definition,
            instance_type=definition.value(resources["InstanceType"]),
            stopping=job_definition["StoppingCondition"],
        ),
        role_arn=role,
        image=job_definition["AlgorithmSpecification"]["TrainingImage"],
        log_group="TrainingJobs",
    )
    yield from _launch(where, why, pipeline_role, launch)
    pipeline = where.identity(pipeline_role)
    for action in (
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    ):
        yield Simulated(f"{why} (follow)", Request(pipeline_role, action, tuning_arn), pipeline)
    identity = where.identity(role)
    for channel in job_definition.get("InputDataConfig", []):
        uri = definition.value(channel["DataSource"]["S3DataSource"]["S3Uri"])
        yield from s3_read(where, f"{why}, channel {channel['ChannelName']}", role, uri, identity)
    archive = f"{output['S3OutputPath'].rstrip('/')}/{training_job}/output/model.tar.gz"
    definition.outputs[f"Steps.{step['Name']}.TrainingJobSummaries[0].TrainingJobName"] = (
        training_job
    )
    yield from s3_write(
        where, f"{why}, model", role, archive, identity, kms_key_id=output.get("KmsKeyId")
    )


def _option(arguments: list[Any], name: str, definition: Definition) -> str | None:
    if name not in arguments:
        return None
    return str(definition.value(arguments[arguments.index(name) + 1]))


# What each job's own code reads beyond its mounted inputs: the served model's registered
# reports (ModelMetrics sections) and whether it loads the model's archive.
_SERVED_MODEL_READS: dict[str, tuple[tuple[str, ...], bool]] = {
    "drift.py": ((), True),
    "attribution.py": (("Explainability",), True),
    # The facets' columns, read with the schema in the archive (monitoring/baseline.py).
    "quality.py": (("ModelQuality",), True),
}


def _container_requests(
    where: Account, why: str, role: str, arguments: list[Any], definition: Definition
) -> Iterator[Simulated]:
    """What a job's own code calls (monitoring/drift.py, attribution.py, quality.py,
    training/publish_card.py): the capture window and its labels, the served model's
    registry record, archive and reports, its metrics, and the model card."""
    identity = where.identity(role)
    script = str(arguments[0]) if arguments else ""
    # A sharded job's summarise step reads only what SageMaker downloaded for it (local
    # /opt/ml/processing paths): only s3:// arguments are the job's own calls.
    for flag, what in (("--capture", "captured traffic"), ("--ground-truth", "labels")):
        prefix = _option(arguments, flag, definition)
        if prefix and prefix.startswith("s3://"):
            yield from s3_read(
                where, f"{why}, {what}", role, f"{prefix.rstrip('/')}/{SAMPLE_HOUR}/", identity
            )
    listed = _option(arguments, "--list-to", definition)
    if listed and listed.startswith("s3://"):  # the manifest, window.json and baseline copy
        yield from s3_write(
            where, f"{why}, window listing", role, listed, identity, kms_key_id=None
        )
    merged = _option(arguments, "--merge-from", definition)
    if merged and merged.startswith("s3://"):
        yield from s3_read(
            where, f"{why}, shard summaries", role, f"{merged.rstrip('/')}/", identity
        )
    baseline = _option(arguments, "--baseline", definition)
    if baseline and baseline.startswith("arn:"):
        sections, loads_model = _SERVED_MODEL_READS[script]
        yield Simulated(
            f"{why}, baseline record",
            Request(role, "sagemaker:DescribeModelPackage", baseline),
            identity,
            where.registry_policy(baseline),
            where.via_vpc(role, "sagemaker.api")[1],
        )
        archive = where.archive_of(baseline)
        if archive and loads_model:
            yield from s3_read(where, f"{why}, baseline archive", role, archive, identity)
        reports = where.reports_of(baseline)
        for section in sections if reports is not None else ():
            assert section in reports, f"{why}: the registry attaches no {section} report"
            yield from s3_read(
                where, f"{why}, registered {section} report", role, reports[section], identity
            )
    namespace = _option(arguments, "--namespace", definition)
    if namespace and "--publish" in arguments:
        yield Simulated(
            f"{why}, metrics",
            Request(role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace}),
            identity,
            endpoint=where.via_vpc(role, "monitoring")[1],
        )
    card = _option(arguments, "--card", definition)
    if card:
        yield from s3_read(where, f"{why}, model card", role, card, identity)
        # Written back where it was, with no SSE header: the bucket's default key applies.
        yield from s3_write(where, f"{why}, model card", role, card, identity, kms_key_id=None)
        name = _option(arguments, "--card-name", definition)
        for action in ("sagemaker:CreateModelCard", "sagemaker:UpdateModelCard"):
            yield Simulated(
                f"{why}, model card",
                Request(role, action, where.arn("sagemaker", f"model-card/{name}")),
                identity,
                endpoint=where.via_vpc(role, "sagemaker.api")[1],
            )
        key = _option(arguments, "--kms-key-id", definition)
        assert key, f"{why}: the model card is stored unencrypted"


# --- schedules, rules, endpoints, log delivery, alarms --------------------------------------


def schedule_requests(where: Account, schedule: RecordedResource) -> Iterator[Simulated]:
    group = schedule.inputs.get("groupName", "default")
    name, target = schedule.inputs["name"], schedule.inputs["target"]
    why = f"schedule {name}"
    role = target["roleArn"]
    yield where.assume(
        why,
        "scheduler.amazonaws.com",
        role,
        **{
            "aws:SourceAccount": where.account,
            "aws:SourceArn": where.arn("scheduler", f"schedule-group/{group}"),
        },
    )
    if "kmsKeyArn" in schedule.inputs:
        context = {
            "kms:EncryptionContext:aws:scheduler:schedule:arn": where.arn(
                "scheduler", f"schedule/{group}/{name}"
            )
        }
        yield Simulated(
            f"{why} (decrypts itself)",
            Request(role, "kms:Decrypt", schedule.inputs["kmsKeyArn"], context),
            where.identity(role),
            where.key_policy_of(schedule.inputs["kmsKeyArn"]),
        )
    yield Simulated(
        why, Request(role, "sagemaker:StartPipelineExecution", target["arn"]), where.identity(role)
    )


def rule_requests(where: Account, target: RecordedResource) -> Iterator[Simulated]:
    rule_arn = where.arn("events", f"rule/{target.inputs['rule']}")
    why = f"rule {target.inputs['rule']}"
    role = target.inputs["roleArn"]
    yield where.assume(
        why,
        "events.amazonaws.com",
        role,
        **{"aws:SourceAccount": where.account, "aws:SourceArn": rule_arn},
    )
    # The kit's rules start pipelines; another kind of target needs its own request here.
    assert target.inputs["arn"].split(":")[5].startswith("pipeline/"), target.inputs["arn"]
    yield Simulated(
        why,
        Request(role, "sagemaker:StartPipelineExecution", target.inputs["arn"]),
        where.identity(role),
    )


def _model_for(where: Account, name: str) -> RecordedResource:
    # Models are auto-named <logical name>-<suffix>; the variant names the physical name.
    (model,) = [
        m
        for m in where.plan.of_type(MODEL)
        if name == m.inputs.get("name") or name.startswith(f"{m.name}-")
    ]
    return model


def endpoint_requests(where: Account, config: RecordedResource) -> Iterator[Simulated]:
    (endpoint,) = [
        e
        for e in where.plan.of_type(ENDPOINT)
        if e.inputs["endpointConfigName"].startswith(config.inputs["namePrefix"])
    ]
    endpoint_name = endpoint.inputs["name"]
    capture = config.inputs.get("dataCaptureConfig") or {}
    variants = [
        *config.inputs["productionVariants"],
        *config.inputs.get("shadowProductionVariants", []),
    ]
    for variant in variants:
        model = _model_for(where, variant["modelName"])
        role = model.inputs["executionRoleArn"]
        why = f"endpoint {endpoint_name}, variant {variant['variantName']}"
        identity = where.identity(role)
        yield where.assume(why, "sagemaker.amazonaws.com", role)
        container = model.inputs["primaryContainer"]
        archive = container.get("modelDataUrl") or where.archive_of(container["modelPackageName"])
        assert archive, f"{why}: cannot tell which archive {container} serves"
        yield from s3_read(where, f"{why}, model archive", role, archive, identity)
        group = where.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{endpoint_name}")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            yield Simulated(
                f"{why} (logs)",
                Request(role, action, f"{group}:log-stream:{variant['variantName']}/i-0"),
                identity,
            )
        if capture.get("enableCapture"):
            base = capture["destinationS3Uri"].rstrip("/")
            destination = f"{base}/{endpoint_name}/{variant['variantName']}/{SAMPLE_HOUR}"
            yield from s3_write(
                where,
                f"{why}, data capture",
                role,
                destination,
                identity,
                kms_key_id=capture.get("kmsKeyId"),
            )


def log_delivery_requests(where: Account, logging: RecordedResource) -> Iterator[Simulated]:
    """S3 server access logging writes into the log bucket as logging.s3.amazonaws.com,
    without SSE headers: the log bucket's default encryption applies."""
    source = _bucket_arn(where, logging.inputs["bucket"])
    context = {"aws:SourceArn": source, "aws:SourceAccount": where.account}
    target = logging.inputs["targetBucket"]
    why = f"access logs of {logging.inputs['bucket']}"
    # Partitioned prefix: <prefix><account>/<region>/<source bucket>/<date>/<log>.
    key = f"{logging.inputs['targetPrefix']}{where.account}/{where.region}/{source.split(':')[5]}"
    key = f"{key}/{SAMPLE_HOUR}/log"
    yield Simulated(
        why,
        Request(
            "logging.s3.amazonaws.com",
            "s3:PutObject",
            f"{_bucket_arn(where, target)}/{key}",
            {**TLS, **context},
        ),
        resource=where.bucket_policy(target),
    )
    key_arn = where.owner(target).bucket_keys[target]
    yield Simulated(
        f"{why} (data key)",
        Request("logging.s3.amazonaws.com", "kms:GenerateDataKey", key_arn, context),
        resource=where.key_policy_of(key_arn),
    )


def alarm_requests(where: Account, alarm: RecordedResource) -> Iterator[Simulated]:
    alarm_arn = where.arn("cloudwatch", f"alarm:{alarm.inputs['name']}")
    context = {"aws:SourceArn": alarm_arn, "aws:SourceAccount": where.account}
    topics = {t.inputs["name"]: t for t in where.plan.of_type(TOPIC)}
    for topic_arn in dict.fromkeys(
        [*alarm.inputs.get("alarmActions", []), *alarm.inputs.get("okActions", [])]
    ):
        if topic_arn.split(":")[2] != "sns":
            continue
        why = f"alarm {alarm.inputs['name']} notifies"
        yield Simulated(
            why,
            Request(
                "cloudwatch.amazonaws.com",
                "sns:Publish",
                topic_arn,
                {**context, "aws:SecureTransport": "true"},
            ),
            resource=ResourcePolicy(
                f"{topic_arn}/policy", where.topic_policies[topic_arn], account=where.account
            ),
        )
        key_arn = topics[topic_arn.rsplit(":", 1)[1]].inputs["kmsMasterKeyId"]
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            yield Simulated(
                f"{why} (encrypted topic)",
                Request("cloudwatch.amazonaws.com", action, key_arn, context),
                resource=where.key_policy_of(key_arn),
            )


def training_first(pipelines: list[RecordedResource]) -> list[RecordedResource]:
    """The training pipeline first: the monitoring jobs read what it registers."""
    return sorted(pipelines, key=lambda p: not p.inputs["pipelineName"].endswith("-training"))


def stack_requests(where: Account) -> list[Simulated]:
    plan = where.plan
    found: list[Simulated] = []
    for pipeline in training_first(plan.of_type(PIPELINE)):
        found += pipeline_requests(where, pipeline)
    for schedule in plan.of_type(SCHEDULE):
        found += schedule_requests(where, schedule)
    for target in plan.of_type(EVENT_TARGET):
        found += rule_requests(where, target)
    for config in plan.of_type(ENDPOINT_CONFIG):
        found += endpoint_requests(where, config)
    for logging in plan.of_type(BUCKET_LOGGING):
        found += log_delivery_requests(where, logging)
    for alarm in plan.of_type(ALARM):
        found += alarm_requests(where, alarm)
    return found
