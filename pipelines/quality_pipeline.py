"""The model-quality pipeline: captured predictions joined with their labels.

    MeasureQuality (processing): capture + ground truth of one window -> quality.json,
        constraint_violations.json, an HTML page; model quality, concept drift and bias
        drift to CloudWatch

A sibling of the drift pipeline rather than a step of it: labels arrive late, so it judges
an older window (``--label-delay-hours``) on a schedule of its own. Same bundle, image and
offline, byte-for-byte build as the other pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines import processing, sdk
from pipelines.spec import PROCESSING_ROOT, BiasSpec, CodeLocation

with sdk.sdk_environment():
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

STEP = "MeasureQuality"
REPORT_DIR = f"{PROCESSING_ROOT}/output/report"


@dataclass(frozen=True)
class QualityPipelineSpec:
    region: str
    pipeline_name: str
    role_arn: str
    kms_key_arn: str
    artifacts_bucket: str
    capture_uri: str
    ground_truth_uri: str
    report_prefix: str
    code: CodeLocation
    image_uri: str
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    endpoint_name: str
    # The served model's package ARN: its registered evaluation and bias reports.
    baseline: str
    metrics_namespace: str
    window_hours: int
    label_delay_hours: int
    alpha: float
    min_labels: int
    min_drop: float
    bias: BiasSpec


class QualityParameter:
    WINDOW_HOURS = "WindowHours"
    LABEL_DELAY_HOURS = "LabelDelayHours"
    INSTANCE_TYPE = "ProcessingInstanceType"


def build_definition(spec: QualityPipelineSpec) -> str:
    from pipelines.training_pipeline import canonical_json

    with sdk.sdk_environment(), sdk.config_validated_once():
        session = sdk.offline_session(spec.region, default_bucket=spec.artifacts_bucket)
        window = ParameterInteger(QualityParameter.WINDOW_HOURS, default_value=spec.window_hours)
        delay = ParameterInteger(
            QualityParameter.LABEL_DELAY_HOURS, default_value=spec.label_delay_hours
        )
        instance_type = ParameterString(
            QualityParameter.INSTANCE_TYPE, default_value=spec.instance_type
        )
        processor = processing.script_processor(
            session,
            role_arn=spec.role_arn,
            image_uri=spec.image_uri,
            instance_type=instance_type,
            volume_size_gb=spec.volume_size_gb,
            kms_key_arn=spec.kms_key_arn,
            max_runtime_seconds=spec.max_runtime_seconds,
            # Lists the hour prefixes of capture and labels, describes the served model in
            # the registry, publishes to CloudWatch: like the drift job, it needs the network.
            network_isolation=False,
            environment=spec.code.job_environment,
        )
        report_uri = Join(
            on="/", values=[spec.report_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID]
        )
        step_args = processor.run(
            code=spec.code.runner_uri,
            inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
            outputs=[processing.s3_output("report", report_uri, REPORT_DIR)],
            arguments=[
                "quality.py",
                "--capture",
                spec.capture_uri,
                "--ground-truth",
                spec.ground_truth_uri,
                "--baseline",
                spec.baseline,
                "--output",
                REPORT_DIR,
                # No --end: the window ends the label delay before the run, so a scheduled
                # run judges predictions whose labels have had that long to arrive.
                "--window-hours",
                window.to_string(),
                "--label-delay-hours",
                delay.to_string(),
                "--alpha",
                repr(spec.alpha),
                "--min-labels",
                str(spec.min_labels),
                "--min-drop",
                repr(spec.min_drop),
                *spec.bias.arguments(),
                "--namespace",
                spec.metrics_namespace,
                "--endpoint-name",
                spec.endpoint_name,
                "--region",
                spec.region,
                "--publish",
            ],
        )
        pipeline = Pipeline(
            name=spec.pipeline_name,
            parameters=[window, delay, instance_type],
            steps=[
                ProcessingStep(
                    name=STEP,
                    step_args=step_args,
                    description="Join predictions with labels; quality, concept and bias drift",
                )
            ],
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        return canonical_json(pipeline.definition())
