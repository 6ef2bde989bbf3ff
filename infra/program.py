"""The stack's resources, declared from validated settings.

``main`` is what ``pulumi up`` runs (via ``infra/__main__.py``) and what the offline plan
runs under mocks; both validate config before a single resource is declared.
"""

from __future__ import annotations

import pulumi

from infra.components.alert_topic import AlertTopic, AlertTopicArgs
from infra.components.endpoint_monitoring import EndpointMonitoring, EndpointMonitoringArgs
from infra.components.execution_role import ExecutionRoleArgs, SageMakerExecutionRole
from infra.components.model_endpoint import ModelEndpoint, ModelEndpointArgs, model_package_arn
from infra.components.storage import Storage, StorageArgs
from infra.components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from infra.config.loader import ConfigError, load_settings
from infra.config.settings import ModelRef, Settings
from infra.naming import BucketPurpose, Naming
from infra.provider import account_id, aws_provider
from infra.stack_files import CodeFiles, DatasetFiles, StackFilesError, build_code, build_dataset


def declare(settings: Settings, code: CodeFiles, dataset: DatasetFiles) -> None:
    provider = aws_provider(settings)
    naming = Naming(prefix=settings.prefix, region=settings.region, partition=settings.partition)
    account = account_id(provider)
    in_account = pulumi.ResourceOptions(providers={"aws": provider})

    storage = Storage(
        "storage",
        StorageArgs(settings=settings.storage, naming=naming, account_id=account),
        opts=in_account,
    )
    role = SageMakerExecutionRole(
        "sagemaker-execution",
        ExecutionRoleArgs(
            naming=naming,
            account_id=account,
            kms_key_arn=storage.key.arn,
            data_bucket_arn=storage.bucket(BucketPurpose.DATA).arn,
            artifacts_bucket_arn=storage.bucket(BucketPurpose.ARTIFACTS).arn,
            capture_bucket_arn=storage.bucket(BucketPurpose.CAPTURE).arn,
        ),
        opts=in_account,
    )

    training = TrainingPipeline(
        "training",
        TrainingPipelineArgs(
            settings=settings,
            naming=naming,
            account_id=account,
            kms_key_arn=storage.key.arn,
            data_bucket=storage.bucket(BucketPurpose.DATA).name,
            artifacts_bucket=storage.bucket(BucketPurpose.ARTIFACTS).name,
            code=code,
            dataset=dataset,
        ),
        opts=in_account,
    )

    alerts = AlertTopic(
        "alerts",
        AlertTopicArgs(
            naming=naming,
            account_id=account,
            kms_key_arn=storage.key.arn,
            emails=settings.monitoring.alarm_emails,
        ),
        opts=in_account,
    )

    serving = monitoring = None
    if settings.serving.model is not None:
        serving = ModelEndpoint(
            "serving",
            ModelEndpointArgs(
                settings=settings,
                naming=naming,
                account_id=account,
                kms_key_arn=storage.key.arn,
                artifacts_bucket=storage.bucket(BucketPurpose.ARTIFACTS).name,
                capture_bucket=storage.bucket(BucketPurpose.CAPTURE).name,
                alarm_actions=[alerts.arn],
            ),
            # The registry must exist before a model can name one of its packages.
            opts=pulumi.ResourceOptions(
                providers={"aws": provider}, depends_on=[training.model_package_group]
            ),
        )

        monitoring = EndpointMonitoring(
            "monitoring",
            EndpointMonitoringArgs(
                settings=settings,
                naming=naming,
                account_id=account,
                kms_key_arn=storage.key.arn,
                artifacts_bucket=storage.bucket(BucketPurpose.ARTIFACTS).name,
                capture_bucket=storage.bucket(BucketPurpose.CAPTURE).name,
                alert_topic_arn=alerts.arn,
                endpoint_alarms=list(serving.alarms.alarms.values()),
                training_pipeline_arn=training.pipeline.arn,
                code=code,
                baseline=served_model_reference(settings.serving.model, naming, account),
            ),
            opts=in_account,
        )

    pulumi.export("environment", settings.environment.value)
    pulumi.export("region", settings.region)
    pulumi.export("kmsKeyArn", storage.key.arn)
    for purpose in BucketPurpose:
        pulumi.export(f"{purpose.camel}Bucket", storage.bucket(purpose).name)
    pulumi.export("executionRoleArn", role.arn)
    pulumi.export("trainingPipelineName", training.pipeline.pipeline_name)
    pulumi.export("trainingPipelineArn", training.pipeline.arn)
    pulumi.export("modelPackageGroupName", training.model_package_group.model_package_group_name)
    pulumi.export("retrainingScheduleState", training.schedule.state)
    pulumi.export("codeSourcedirKey", code.sourcedir.key)
    if serving is not None:
        pulumi.export("endpointName", serving.endpoint.name)
        pulumi.export("endpointConfigName", serving.configuration.name)
        pulumi.export("servingModelName", serving.model.name)
        pulumi.export("rollbackAlarmNames", serving.alarms.names)
    pulumi.export("alertsTopicArn", alerts.arn)
    if monitoring is not None:
        pulumi.export("dashboardName", monitoring.dashboard.dashboard_name)
        if monitoring.drift_pipeline is not None:
            pulumi.export("driftPipelineName", monitoring.drift_pipeline.pipeline_name)
            pulumi.export("driftAlarmName", monitoring.alarms["drift"].name)
    if training.baseline_job is not None:
        pulumi.export("baselineTrainingJobName", training.baseline_job.training_job_name)


def served_model_reference(
    model: ModelRef, naming: Naming, account: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The served model as the drift job finds its baseline: package ARN or archive URI."""
    if model.package_version is not None:
        version = model.package_version
        return pulumi.Output.from_input(account).apply(
            lambda a: model_package_arn(naming, a, version)
        )
    return pulumi.Output.from_input(model.package_arn or model.data_uri or "")


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        # RunError makes `pulumi up` print just the message, not a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    try:
        code, dataset = build_code(), build_dataset()
    except StackFilesError as exc:
        raise pulumi.RunError(str(exc)) from None
    declare(settings, code, dataset)
