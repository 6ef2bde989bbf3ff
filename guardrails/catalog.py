"""The guardrails, by name: what the policy pack and the offline check both enforce."""

from __future__ import annotations

from guardrails import (
    capture,
    encryption,
    iam,
    instances,
    isolation,
    network,
    pipeline_jobs,
    placeholders,
    public_access,
    tags,
)
from guardrails.model import Guardrail, Level, Param


def _environments(description: str, default: list[str]) -> Param:
    """The environments a rule applies in (matched against ``environment``)."""
    return Param(
        {"type": "array", "items": {"type": "string"}, "description": description}, default
    )


_ENVIRONMENT = Param(
    {
        "type": "string",
        "description": "Environment to judge by; default: the provider's defaultTags "
        "'environment', then the resource's own 'environment' tag.",
    }
)

GUARDRAILS: tuple[Guardrail, ...] = (
    Guardrail(
        "encryption-at-rest",
        "S3 buckets default to SSE-KMS; SNS topics, training jobs, pipeline jobs (volumes, "
        "outputs, batch capture), endpoint configurations (captured data and instance volumes) "
        "and schedules "
        "use a KMS key.",
        Level.MANDATORY,
        resource_validators=(
            encryption.validate_resource,
            pipeline_jobs.validate_encryption_at_rest,
        ),
        stack_validators=(encryption.validate_buckets,),
    ),
    Guardrail(
        "encryption-in-transit",
        "Training jobs and every job a pipeline starts encrypt inter-container traffic.",
        Level.MANDATORY,
        resource_validators=(pipeline_jobs.validate_in_transit,),
    ),
    Guardrail(
        "no-public-buckets",
        "Every S3 bucket has a public access block with all four flags on and a bucket "
        "policy that denies aws:SecureTransport false.",
        Level.MANDATORY,
        stack_validators=(public_access.validate_buckets,),
    ),
    Guardrail(
        "network-isolation",
        "SageMaker models, training jobs and pipeline jobs set network isolation, and so do "
        "the models of pipeline transform steps; a model "
        "served only by serverless variants is exempt (serverless does not support it), and "
        "so are the pipeline steps that must reach AWS (networkAccessSteps: the monitoring "
        "jobs, which list S3, read the registry and publish metrics, and the model-card step, "
        "which calls CreateModelCard).",
        Level.MANDATORY,
        resource_validators=(isolation.validate_training_job, pipeline_jobs.validate_isolation),
        stack_validators=(isolation.validate_models, isolation.validate_transform_models),
        params={
            "exemptServerless": Param(
                {"type": "boolean", "description": "Exempt models served only serverless."},
                True,
            ),
            "networkAccessSteps": Param(
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Pipeline steps (by name) whose jobs may have network.",
                },
                sorted(pipeline_jobs.NETWORK_ACCESS_STEPS),
            ),
        },
    ),
    Guardrail(
        "vpc-mode",
        "In the listed environments (default staging, prod), SageMaker models, training jobs "
        "and every job a pipeline starts run in a VPC (a VpcConfig with at least one subnet "
        "and one security group; a model served only by serverless variants is exempt, as "
        "serverless does not support it), and the stack declares no internet, NAT or "
        "egress-only gateway, no route to 0.0.0.0/0 or ::/0 and no security-group rule open "
        "to either.",
        Level.MANDATORY,
        resource_validators=(network.validate_resource,),
        stack_validators=(network.validate_models,),
        params={
            "environments": _environments(
                "Environments that must run in a VPC.", list(network.DEFAULT_ENVIRONMENTS)
            ),
            "environment": _ENVIRONMENT,
            "exemptServerless": Param(
                {"type": "boolean", "description": "Exempt models served only serverless."},
                True,
            ),
        },
    ),
    Guardrail(
        "no-wildcard-iam-resources",
        'IAM policies grant "Resource": "*" only for actions IAM cannot scope '
        "(infra.policies.STAR_ONLY_ACTIONS).",
        Level.MANDATORY,
        resource_validators=(iam.validate,),
    ),
    Guardrail(
        "data-capture-in-prod",
        "Endpoint configurations with instance variants enable data capture in production.",
        Level.MANDATORY,
        resource_validators=(capture.validate,),
        params={
            "environments": _environments(
                "Environments that must capture.", list(capture.DEFAULT_ENVIRONMENTS)
            ),
            "environment": _ENVIRONMENT,
        },
    ),
    Guardrail(
        "required-tags",
        "Taggable AWS resources carry the required tags, own or from the provider's defaultTags.",
        Level.MANDATORY,
        resource_validators=(tags.validate,),
        params={
            "tags": Param(
                {"type": "array", "items": {"type": "string"}, "description": "Required tag keys."},
                list(tags.DEFAULT_TAGS),
            )
        },
    ),
    Guardrail(
        "allowed-instance-types",
        "Endpoint variants and training jobs use the instance types their environment allows.",
        Level.MANDATORY,
        resource_validators=(instances.validate,),
        params={
            "allowed": Param(
                {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Environment -> allowed instance types (globs, e.g. ml.m5.*).",
                },
                instances.DEFAULT_ALLOWED,
            ),
            "environment": _ENVIRONMENT,
        },
    ),
    Guardrail(
        "no-placeholder-settings",
        "Stacks in the listed environments (default prod) send alarms to real addresses and "
        "carry real tags: no RFC 2606 example e-mail domains, no CHANGE-ME placeholders.",
        Level.MANDATORY,
        stack_validators=(placeholders.validate_enforced,),
        params={
            "environments": _environments(
                "Environments where a placeholder fails the stack.",
                list(placeholders.ENFORCED_ENVIRONMENTS),
            ),
            "environment": _ENVIRONMENT,
        },
    ),
    Guardrail(
        "placeholder-settings-warning",
        "Placeholder alert e-mails and tags in the listed environments (default dev, "
        "staging) and in the kit's sample stack: a warning to replace them before prod.",
        Level.ADVISORY,
        stack_validators=(placeholders.validate_warned,),
        params={
            "environments": _environments(
                "Environments where a placeholder is reported as a warning.",
                list(placeholders.WARNED_ENVIRONMENTS),
            ),
            "environment": _ENVIRONMENT,
        },
    ),
)


def guardrail_named(name: str) -> Guardrail:
    for guardrail in GUARDRAILS:
        if guardrail.name == name:
            return guardrail
    raise KeyError(name)
