"""The model-quality pipeline: captured predictions joined with their labels.

    MeasureQuality (processing): capture + ground truth of one window -> quality.json,
        constraint_violations.json, an HTML page; model quality, concept drift and bias
        drift to CloudWatch

With ``instance_count`` above 1, MeasureQuality merges what N instances summarised
(pipelines/shard_steps.py): ListQualityWindow -> SummariseQuality (N instances) ->
MeasureQuality.

A sibling of the drift pipeline rather than a step of it: labels arrive late, so it judges
an older window (``--label-delay-hours``) on a schedule of its own. Same bundle, image and
offline, byte-for-byte build as the other pipelines; in the stack's VPC when the spec has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import processing, sdk, shard_steps
from pipelines.spec import PROCESSING_ROOT, BiasSpec, CodeLocation, VpcSpec

with sdk.sdk_environment():
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

STEP = "MeasureQuality"
LIST_STEP = "ListQualityWindow"
SUMMARISE_STEP = "SummariseQuality"
# The list step writes the labels' manifest beside the capture's, named so (monitoring/
# quality_shards.py, LABELS_MANIFEST_PREFIX).
LABELS_MANIFEST_NAME = f"labels-{shard_steps.MANIFEST_NAME}"
LABELS_DIR = f"{PROCESSING_ROOT}/input/labels"
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
    # Above 1: list, summarise on this many instances, merge (see the module docstring).
    instance_count: int = 1
    # Every step's VpcConfig; None: SageMaker's own network.
    vpc: VpcSpec | None = None


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
        report_uri = Join(
            on="/", values=[spec.report_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID]
        )
        window_flags = [
            # No --end: the window ends the label delay before the run, so a scheduled
            # run judges predictions whose labels have had that long to arrive.
            "--window-hours",
            window.to_string(),
            "--label-delay-hours",
            delay.to_string(),
        ]
        judging = [
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
        ]
        job_arguments = [
            "quality.py",
            "--capture",
            spec.capture_uri,
            "--ground-truth",
            spec.ground_truth_uri,
            "--baseline",
            spec.baseline,
            "--output",
            REPORT_DIR,
            *window_flags,
            *judging,
        ]
        if spec.instance_count > 1:
            steps = _sharded_steps(
                spec, session, instance_type, job_arguments, judging, delay, report_uri
            )
        else:
            step_args = _processor(spec, session, instance_type).run(
                code=spec.code.runner_uri,
                inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
                outputs=[processing.s3_output("report", report_uri, REPORT_DIR)],
                arguments=job_arguments,
            )
            steps = [
                ProcessingStep(
                    name=STEP,
                    step_args=step_args,
                    description="Join predictions with labels; quality, concept and bias drift",
                )
            ]
        pipeline = Pipeline(
            name=spec.pipeline_name,
            parameters=[window, delay, instance_type],
            steps=steps,
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        return canonical_json(pipeline.definition())


def _processor(
    spec: QualityPipelineSpec, session: Any, instance_type: Any, *, network_isolation: bool = False
) -> Any:
    return processing.script_processor(
        session,
        role_arn=spec.role_arn,
        image_uri=spec.image_uri,
        instance_type=instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        # Lists the hour prefixes of capture and labels, describes the served model in
        # the registry, publishes to CloudWatch: like the drift job, it needs the network;
        # only the summarise step of a sharded run reads local files alone.
        network_isolation=network_isolation,
        environment=spec.code.job_environment,
        vpc=spec.vpc,
    )


def _sharded_steps(
    spec: QualityPipelineSpec,
    session: Any,
    instance_type: Any,
    job_arguments: list[Any],
    judging: list[Any],
    delay: Any,
    report_uri: Any,
) -> list[Any]:
    """ListQualityWindow -> SummariseQuality (N instances) -> MeasureQuality (the merge)."""
    manifest = shard_steps.run_uri(spec.report_prefix, shard_steps.MANIFEST_NAME)
    labels = shard_steps.run_uri(spec.report_prefix, LABELS_MANIFEST_NAME)
    window = shard_steps.run_uri(spec.report_prefix, shard_steps.WINDOW_NAME)
    summaries = shard_steps.run_uri(spec.report_prefix, shard_steps.SUMMARIES_FOLDER)
    baseline = shard_steps.run_uri(spec.report_prefix, f"{shard_steps.BASELINE_FOLDER}/")
    bundle = processing.bundle_input(spec.code.sourcedir_uri)
    report = processing.s3_output("report", report_uri, REPORT_DIR)
    list_args = _processor(spec, session, instance_type).run(
        code=spec.code.runner_uri,
        inputs=[bundle],
        outputs=[report],
        arguments=[*job_arguments, "--list-to", manifest],
    )
    listing = ProcessingStep(
        name=LIST_STEP, step_args=list_args, description="List the window's capture and labels"
    )
    processor = shard_steps.scaled(
        _processor(spec, session, instance_type, network_isolation=True), spec.instance_count
    )
    summarise_args = processor.run(
        code=spec.code.runner_uri,
        inputs=[
            bundle,
            shard_steps.manifest_input("capture", manifest, shard_steps.CAPTURE_DIR, sharded=True),
            # Every instance gets every label file: a record's label may be in any of them.
            shard_steps.manifest_input("labels", labels, LABELS_DIR, sharded=False),
            processing.s3_input("window", window, shard_steps.WINDOW_DIR),
            processing.s3_input("baseline", baseline, shard_steps.BASELINE_DIR),
        ],
        outputs=[processing.s3_output("summaries", summaries, shard_steps.SUMMARIES_OUTPUT_DIR)],
        arguments=[
            "quality.py",
            "--capture",
            shard_steps.CAPTURE_DIR,
            "--ground-truth",
            LABELS_DIR,
            "--baseline",
            shard_steps.BASELINE_DIR,
            "--window-from",
            shard_steps.WINDOW_DIR,
            "--label-delay-hours",
            delay.to_string(),
            *spec.bias.arguments(),
            "--summary-to",
            shard_steps.SUMMARIES_OUTPUT_DIR,
        ],
    )
    summarise = ProcessingStep(
        name=SUMMARISE_STEP,
        step_args=summarise_args,
        description=f"Join capture with labels on {spec.instance_count} instances",
        depends_on=[listing],
    )
    merge_args = _processor(spec, session, instance_type).run(
        code=spec.code.runner_uri,
        inputs=[
            bundle,
            processing.s3_input("summaries", summaries, shard_steps.SUMMARIES_INPUT_DIR),
            processing.s3_input("window", window, shard_steps.WINDOW_DIR),
        ],
        outputs=[report],
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
            "--label-delay-hours",
            delay.to_string(),
            *judging,
            "--merge-from",
            shard_steps.SUMMARIES_INPUT_DIR,
            "--window-from",
            shard_steps.WINDOW_DIR,
        ],
    )
    merge = ProcessingStep(
        name=STEP,
        step_args=merge_args,
        description="Merge the summaries; quality, concept and bias drift",
        depends_on=[summarise],
    )
    return [listing, summarise, merge]
