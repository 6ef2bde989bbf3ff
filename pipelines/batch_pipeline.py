"""The batch pipeline: score an S3 prefix with the model the stack serves, as its own pipeline.

    Transform (transform job): InputUri -> <OutputUri>/<execution id>/transform/*.out
    SplitBatchOutput (processing, bad rows "errors" only): transform/ -> predictions/,
        errors/ (+ errors/summary.json: files, rows, scored, errors, errors_by_reason)

(pipelines/batch_layout.py names the parameters and folders.)

Batch runs as its own pipeline (``<prefix>-batch``), not as a step after registration:
scoring has its own cadence and inputs (new prefixes of customers to score), must use the
registry version the stack serves (``serving.model``, resolved as the endpoint resolves
it), and must not run again whenever a model is trained. The transform runs a model the
stack declares (network isolation, the stack's execution role); the pipeline names it
and never creates one, so every run uses the served version and leaves nothing behind.

With bad rows "fail" the handler refuses a mini-batch holding a bad row, so the transform
job itself fails and names it; there is nothing to split. With "errors" every row gets an
answer line and the split step parts them (inference/batch_split.py). Formats, filters and
the bad-row variable come from inference/batch_contract.py. Like the other definitions it
builds offline and byte-for-byte the same from the same spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inference import batch_contract as contract
from pipelines import processing, sdk
from pipelines.batch_layout import (
    ERRORS_FOLDER,
    INPUT_URI,
    OUTPUT_URI,
    PREDICTIONS_FOLDER,
    TRANSFORM_FOLDER,
)
from pipelines.spec import PROCESSING_ROOT, CodeLocation, VpcSpec

with sdk.sdk_environment():
    from sagemaker.core.inputs import BatchDataCaptureConfig
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TransformStep

TRANSFORM_STEP = "Transform"
SPLIT_STEP = "SplitBatchOutput"
SPLIT_INPUT_DIR = f"{PROCESSING_ROOT}/input/transform"
PREDICTIONS_DIR = f"{PROCESSING_ROOT}/output/predictions"
ERRORS_DIR = f"{PROCESSING_ROOT}/output/errors"


@dataclass(frozen=True)
class TransformSpec:
    """CreateTransformJob's settings (the stack's mlops:batch)."""

    instance_type: str
    instance_count: int
    max_payload_mb: int
    # 0: SageMaker chooses (the member is left out of the request).
    max_concurrent_transforms: int
    content_type: str
    bad_rows: contract.BadRows

    def __post_init__(self) -> None:
        contract.data_processing(self.content_type)  # refuses an unknown format
        if not 0 <= self.max_payload_mb <= contract.MAX_PAYLOAD_MB_LIMIT:
            raise ValueError(
                f"max payload {self.max_payload_mb} MB is outside 0-"
                f"{contract.MAX_PAYLOAD_MB_LIMIT} (CreateTransformJob MaxPayloadInMB)"
            )
        # CreateTransformJob: "The value of MaxPayloadInMB multiplied by the number of
        # concurrent transforms must not exceed 100 MB."
        total = self.max_payload_mb * self.max_concurrent_transforms
        if total > contract.MAX_PAYLOAD_MB_LIMIT:
            raise ValueError(
                f"max payload {self.max_payload_mb} MB x {self.max_concurrent_transforms} "
                f"concurrent transforms = {total} MB, over SageMaker's "
                f"{contract.MAX_PAYLOAD_MB_LIMIT} MB"
            )


@dataclass(frozen=True)
class BatchPipelineSpec:
    region: str
    pipeline_name: str
    # The split job's role: the stack's execution role, which the model runs as too.
    role_arn: str
    kms_key_arn: str
    artifacts_bucket: str
    # The stack's batch model (declared by the stack, network-isolated).
    model_name: str
    # Parameter defaults: the data bucket's batch/input/ prefix; the artifacts bucket's
    # batch/output (each execution writes below <this>/<execution id>/).
    input_uri: str
    output_uri: str
    transform: TransformSpec
    code: CodeLocation
    image_uri: str
    split_instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    # Batch capture's DestinationS3Uri; None: no capture.
    capture_uri: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # The split step's VpcConfig; None: SageMaker's own network. The transform job has no
    # VpcConfig of its own: it runs in its model's (see _transform_step).
    vpc: VpcSpec | None = None


def run_uri(output_uri: Any, folder: str) -> Any:
    """<OutputUri>/<execution id>/<folder>, as the pipeline resolves it at run time."""
    return Join(on="/", values=[output_uri, ExecutionVariables.PIPELINE_EXECUTION_ID, folder])


def build_definition(spec: BatchPipelineSpec) -> str:
    from pipelines.training_pipeline import canonical_json

    with sdk.sdk_environment(), sdk.config_validated_once():
        session = sdk.offline_session(spec.region, default_bucket=spec.artifacts_bucket)
        input_uri = ParameterString(INPUT_URI, default_value=spec.input_uri)
        output_uri = ParameterString(OUTPUT_URI, default_value=spec.output_uri.rstrip("/"))
        transform = _transform_step(spec, session, input_uri, output_uri)
        steps = [transform]
        if spec.transform.bad_rows is contract.BadRows.ERRORS:
            steps.append(_split_step(spec, session, output_uri, transform))
        pipeline = Pipeline(
            name=spec.pipeline_name,
            parameters=[input_uri, output_uri],
            steps=steps,
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        return canonical_json(pipeline.definition())


def _transform_step(spec: BatchPipelineSpec, session: Any, input_uri: Any, output_uri: Any) -> Any:
    # No VpcConfig here, by design: CreateTransformJob has no such member (botocore's
    # sagemaker service model). A transform job runs in the VPC of the model it names,
    # CreateModel's VpcConfig, which the stack sets on its batch model resource.
    job = spec.transform
    processing_args = contract.data_processing(job.content_type)
    transformer = Transformer(
        model_name=spec.model_name,
        instance_count=job.instance_count,
        instance_type=job.instance_type,
        strategy=contract.BATCH_STRATEGY,
        assemble_with=contract.ASSEMBLE_WITH,
        output_path=run_uri(output_uri, TRANSFORM_FOLDER),
        output_kms_key=spec.kms_key_arn,
        volume_kms_key=spec.kms_key_arn,
        accept=contract.accept(job.content_type),
        max_concurrent_transforms=job.max_concurrent_transforms or None,
        max_payload=job.max_payload_mb,
        # Tells the handler it is in batch mode, and what to do with a bad row.
        env={contract.BAD_ROWS_ENV: job.bad_rows.value},
        tags=[{"Key": k, "Value": v} for k, v in spec.tags] or None,
        # Without one the SDK asks AWS for the model's image to name the job; Pipelines
        # names the job itself anyway.
        base_transform_job_name=TRANSFORM_STEP.lower(),
        sagemaker_session=session,
    )
    capture = None
    if spec.capture_uri is not None:
        capture = BatchDataCaptureConfig(
            destination_s3_uri=spec.capture_uri,
            kms_key_id=spec.kms_key_arn,
            generate_inference_id=contract.GENERATE_INFERENCE_ID,
        )
    step_args = transformer.transform(
        data=input_uri,
        data_type="S3Prefix",
        content_type=job.content_type,
        split_type=contract.SPLIT_TYPE,
        input_filter=processing_args["InputFilter"],
        join_source=processing_args["JoinSource"],
        output_filter=processing_args["OutputFilter"],
        batch_data_capture_config=capture,
    )
    return TransformStep(
        name=TRANSFORM_STEP,
        step_args=step_args,
        description=f"Score every object under InputUri (bad rows: {job.bad_rows.value})",
    )


def _split_step(spec: BatchPipelineSpec, session: Any, output_uri: Any, transform: Any) -> Any:
    processor = processing.script_processor(
        session,
        role_arn=spec.role_arn,
        image_uri=spec.image_uri,
        instance_type=spec.split_instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        # Reads and writes local folders only; SageMaker moves them to and from S3.
        network_isolation=True,
        environment=spec.code.job_environment,
        vpc=spec.vpc,
    )
    step_args = processor.run(
        code=spec.code.runner_uri,
        inputs=[
            processing.bundle_input(spec.code.sourcedir_uri),
            processing.s3_input(
                "transform", run_uri(output_uri, TRANSFORM_FOLDER), SPLIT_INPUT_DIR
            ),
        ],
        outputs=[
            processing.s3_output(
                "predictions", run_uri(output_uri, PREDICTIONS_FOLDER), PREDICTIONS_DIR
            ),
            processing.s3_output("errors", run_uri(output_uri, ERRORS_FOLDER), ERRORS_DIR),
        ],
        arguments=[
            contract.SPLIT_SCRIPT,
            "--input",
            SPLIT_INPUT_DIR,
            "--predictions",
            PREDICTIONS_DIR,
            "--errors",
            ERRORS_DIR,
            "--content-type",
            spec.transform.content_type,
        ],
    )
    return ProcessingStep(
        name=SPLIT_STEP,
        step_args=step_args,
        description="Part the transform output into predictions, errors and summary.json",
        # The same path the transform step writes; named, not read off its properties, so
        # the definition reads the same to every tool that resolves it.
        depends_on=[transform],
    )
