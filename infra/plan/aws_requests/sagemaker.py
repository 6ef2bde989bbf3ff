"""SageMaker resources -> the requests the provider sends.

Sources (hashicorp/terraform-provider-aws, internal/service/sagemaker/...):
model.go (resourceModelCreate, expandContainer), endpoint_configuration.go
(resourceEndpointConfigurationCreate, expandProductionVariants, expandDataCaptureConfig,
expandServerlessConfig), endpoint.go (resourceEndpointCreate,
expandEndpointDeploymentConfig and its parts), model_package_group.go,
model_package_group_policy.go, pipeline.go (resourcePipelineCreate), training_job.go
(a Plugin Framework resource: AutoFlex copies each block field to the API field of the same
name, compared case-insensitively; Pulumi pluralises list blocks, e.g. inputDataConfigs).
"""

from __future__ import annotations

from infra.plan.aws_requests.inputs import Context, Inputs, Params, Request, request
from infra.plan.aws_requests.storage import REGION


def model(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "ModelName": ctx.name(i),
        "PrimaryContainer": i.block("primaryContainer", _container),
        "Containers": i.blocks("containers", _container),
        "ExecutionRoleArn": i.get("executionRoleArn"),
        "EnableNetworkIsolation": i.get("enableNetworkIsolation"),
        "VpcConfig": i.block("vpcConfig", _vpc),
        "InferenceExecutionConfig": i.block(
            "inferenceExecutionConfig", lambda c: {"Mode": c.get("mode")}
        ),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreateModel", params)]


def _container(c: Inputs) -> Params:
    return {
        "Image": c.get("image"),
        "Mode": c.get("mode"),
        "ContainerHostname": c.get("containerHostname"),
        "ModelDataUrl": c.get("modelDataUrl"),
        "ModelPackageName": c.get("modelPackageName"),
        "Environment": c.get("environment"),
        "InferenceSpecificationName": c.get("inferenceSpecificationName"),
        "ImageConfig": c.block(
            "imageConfig", lambda g: {"RepositoryAccessMode": g.get("repositoryAccessMode")}
        ),
        "MultiModelConfig": c.block(
            "multiModelConfig", lambda m: {"ModelCacheSetting": m.get("modelCacheSetting")}
        ),
    }


def _vpc(v: Inputs) -> Params:
    return {"SecurityGroupIds": v.get("securityGroupIds"), "Subnets": v.get("subnets")}


def endpoint_configuration(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "EndpointConfigName": ctx.name(i),
        "ProductionVariants": i.blocks("productionVariants", lambda v: _variant(v, ctx)),
        "ShadowProductionVariants": i.blocks(
            "shadowProductionVariants", lambda v: _variant(v, ctx)
        ),
        "DataCaptureConfig": i.block("dataCaptureConfig", _data_capture),
        "KmsKeyId": i.get("kmsKeyArn"),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreateEndpointConfig", params)]


def _variant(v: Inputs, ctx: Context) -> Params:
    return {
        # Unnamed variants get a generated name.
        "VariantName": v.get("variantName") or ctx.unique_id(),
        "ModelName": v.get("modelName"),
        "InstanceType": v.get("instanceType"),
        "InitialInstanceCount": v.get("initialInstanceCount"),
        "InitialVariantWeight": v.get("initialVariantWeight"),
        "AcceleratorType": v.get("acceleratorType"),
        "VolumeSizeInGB": v.get("volumeSizeInGb"),
        "ModelDataDownloadTimeoutInSeconds": v.get("modelDataDownloadTimeoutInSeconds"),
        "ContainerStartupHealthCheckTimeoutInSeconds": v.get(
            "containerStartupHealthCheckTimeoutInSeconds"
        ),
        "EnableSSMAccess": v.get("enableSsmAccess"),
        "ServerlessConfig": v.block(
            "serverlessConfig",
            lambda s: {
                "MemorySizeInMB": s.get("memorySizeInMb"),
                "MaxConcurrency": s.get("maxConcurrency"),
                "ProvisionedConcurrency": s.get("provisionedConcurrency"),
            },
        ),
    }


def _data_capture(d: Inputs) -> Params:
    return {
        "EnableCapture": d.get("enableCapture"),
        "InitialSamplingPercentage": d.get("initialSamplingPercentage"),
        "DestinationS3Uri": d.get("destinationS3Uri"),
        "KmsKeyId": d.get("kmsKeyId"),
        "CaptureOptions": d.blocks(
            "captureOptions", lambda o: {"CaptureMode": o.get("captureMode")}
        ),
        "CaptureContentTypeHeader": d.block(
            "captureContentTypeHeader",
            lambda h: {
                "CsvContentTypes": h.get("csvContentTypes"),
                "JsonContentTypes": h.get("jsonContentTypes"),
            },
        ),
    }


def endpoint(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "EndpointName": ctx.name(i),
        "EndpointConfigName": i.get("endpointConfigName"),
        "DeploymentConfig": i.block("deploymentConfig", _deployment),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreateEndpoint", params)]


def _deployment(d: Inputs) -> Params:
    return {
        "BlueGreenUpdatePolicy": d.block(
            "blueGreenUpdatePolicy",
            lambda b: {
                "TrafficRoutingConfiguration": b.block("trafficRoutingConfiguration", _routing),
                "TerminationWaitInSeconds": b.get("terminationWaitInSeconds"),
                "MaximumExecutionTimeoutInSeconds": b.get("maximumExecutionTimeoutInSeconds"),
            },
        ),
        "RollingUpdatePolicy": d.block(
            "rollingUpdatePolicy",
            lambda r: {
                "MaximumBatchSize": r.block("maximumBatchSize", _capacity),
                "WaitIntervalInSeconds": r.get("waitIntervalInSeconds"),
                "MaximumExecutionTimeoutInSeconds": r.get("maximumExecutionTimeoutInSeconds"),
                "RollbackMaximumBatchSize": r.block("rollbackMaximumBatchSize", _capacity),
            },
        ),
        "AutoRollbackConfiguration": d.block(
            "autoRollbackConfiguration",
            lambda a: {"Alarms": a.blocks("alarms", lambda m: {"AlarmName": m.get("alarmName")})},
        ),
    }


def _routing(r: Inputs) -> Params:
    return {
        "Type": r.get("type"),
        "WaitIntervalInSeconds": r.get("waitIntervalInSeconds"),
        "CanarySize": r.block("canarySize", _capacity),
        "LinearStepSize": r.block("linearStepSize", _capacity),
    }


def _capacity(c: Inputs) -> Params:
    return {"Type": c.get("type"), "Value": c.get("value")}


def model_package_group(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "ModelPackageGroupName": i.get("modelPackageGroupName"),
        "ModelPackageGroupDescription": i.get("modelPackageGroupDescription"),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreateModelPackageGroup", params)]


def model_package_group_policy(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "ModelPackageGroupName": i.get("modelPackageGroupName"),
        "ResourcePolicy": i.get("resourcePolicy"),
    }
    return [request("sagemaker", "PutModelPackageGroupPolicy", params)]


def pipeline(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    params = {
        "PipelineName": i.get("pipelineName"),
        "PipelineDisplayName": i.get("pipelineDisplayName"),
        "PipelineDescription": i.get("pipelineDescription"),
        "PipelineDefinition": i.get("pipelineDefinition"),
        "PipelineDefinitionS3Location": i.block(
            "pipelineDefinitionS3Location",
            lambda s: {
                "Bucket": s.get("bucket"),
                "ObjectKey": s.get("objectKey"),
                "VersionId": s.get("versionId"),
            },
        ),
        "RoleArn": i.get("roleArn"),
        "ParallelismConfiguration": i.block(
            "parallelismConfiguration",
            lambda p: {"MaxParallelExecutionSteps": p.get("maxParallelExecutionSteps")},
        ),
        "ClientRequestToken": ctx.unique_id(),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreatePipeline", params)]


def training_job(i: Inputs, ctx: Context) -> list[Request]:
    i.provider_only("region", REGION)
    i.provider_only("timeouts", "how long the provider waits for the job")
    params = {
        "TrainingJobName": i.get("trainingJobName"),
        "RoleArn": i.get("roleArn"),
        "AlgorithmSpecification": i.block("algorithmSpecification", _algorithm),
        "HyperParameters": i.get("hyperParameters"),
        "Environment": i.get("environment"),
        "InputDataConfig": i.blocks("inputDataConfigs", _channel),
        "OutputDataConfig": i.block(
            "outputDataConfig",
            lambda o: {
                "S3OutputPath": o.get("s3OutputPath"),
                "KmsKeyId": o.get("kmsKeyId"),
                "CompressionType": o.get("compressionType"),
            },
        ),
        "ResourceConfig": i.block(
            "resourceConfig",
            lambda r: {
                "InstanceType": r.get("instanceType"),
                "InstanceCount": r.get("instanceCount"),
                "VolumeSizeInGB": r.get("volumeSizeInGb"),
                "VolumeKmsKeyId": r.get("volumeKmsKeyId"),
                "KeepAlivePeriodInSeconds": r.get("keepAlivePeriodInSeconds"),
            },
        ),
        "StoppingCondition": i.block(
            "stoppingCondition",
            lambda s: {
                "MaxRuntimeInSeconds": s.get("maxRuntimeInSeconds"),
                "MaxWaitTimeInSeconds": s.get("maxWaitTimeInSeconds"),
                "MaxPendingTimeInSeconds": s.get("maxPendingTimeInSeconds"),
            },
        ),
        "CheckpointConfig": i.block(
            "checkpointConfig",
            lambda c: {"S3Uri": c.get("s3Uri"), "LocalPath": c.get("localPath")},
        ),
        "VpcConfig": i.block("vpcConfig", _vpc),
        "EnableNetworkIsolation": i.get("enableNetworkIsolation"),
        "EnableInterContainerTrafficEncryption": i.get("enableInterContainerTrafficEncryption"),
        "EnableManagedSpotTraining": i.get("enableManagedSpotTraining"),
        "Tags": ctx.tag_list(i),
    }
    return [request("sagemaker", "CreateTrainingJob", params)]


def _algorithm(a: Inputs) -> Params:
    return {
        "TrainingImage": a.get("trainingImage"),
        "AlgorithmName": a.get("algorithmName"),
        "TrainingInputMode": a.get("trainingInputMode"),
        "MetricDefinitions": a.blocks(
            "metricDefinitions", lambda m: {"Name": m.get("name"), "Regex": m.get("regex")}
        ),
        "ContainerEntrypoint": a.get("containerEntrypoints"),
        "ContainerArguments": a.get("containerArguments"),
        "EnableSageMakerMetricsTimeSeries": a.get("enableSagemakerMetricsTimeSeries"),
    }


def _channel(c: Inputs) -> Params:
    return {
        "ChannelName": c.get("channelName"),
        "DataSource": c.block(
            "dataSource",
            lambda d: {
                "S3DataSource": d.block(
                    "s3DataSource",
                    lambda s: {
                        "S3Uri": s.get("s3Uri"),
                        "S3DataType": s.get("s3DataType"),
                        "S3DataDistributionType": s.get("s3DataDistributionType"),
                        "AttributeNames": s.get("attributeNames"),
                    },
                ),
            },
        ),
        "ContentType": c.get("contentType"),
        "CompressionType": c.get("compressionType"),
        "InputMode": c.get("inputMode"),
        "RecordWrapperType": c.get("recordWrapperType"),
    }


MAPPINGS = {
    "aws:sagemaker/model:Model": model,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": endpoint_configuration,
    "aws:sagemaker/endpoint:Endpoint": endpoint,
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": model_package_group,
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": model_package_group_policy,
    "aws:sagemaker/pipeline:Pipeline": pipeline,
    "aws:sagemaker/trainingJob:TrainingJob": training_job,
}
