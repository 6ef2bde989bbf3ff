"""The drift-monitoring pipeline: the jobs that read captured traffic alone (no labels).

    DetectDrift (processing): capture window -> drift.json + drift.html, CloudWatch metrics
    DetectAttributionDrift (processing, beside it): the same window's SHAP feature ranking
        against the registered explainability report -> NDCG, CloudWatch metrics

With ``instance_count`` above 1, DetectDrift merges what N instances summarised
(pipelines/shard_steps.py): ListDriftWindow -> SummariseDrift (N instances) -> DetectDrift.

Both run the same code bundle as the training pipeline (``drift.py`` and ``attribution.py``
inside it, launched by ``bundle_runner.py``) on the same managed scikit-learn image, each as
its own role, in the stack's VPC when the spec has one (``vpc``): DetectDrift keeps its
network access, which then reaches S3, the registry and CloudWatch through the VPC's
endpoints. Reports land next to the captured data, under a per-execution prefix. Like the
training definition it builds offline and byte-for-byte the same from the same spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import processing, sdk, shard_steps
from pipelines.spec import PROCESSING_ROOT, CodeLocation, VpcSpec

with sdk.sdk_environment():
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import (
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

STEP = "DetectDrift"
LIST_STEP = "ListDriftWindow"
SUMMARISE_STEP = "SummariseDrift"
ATTRIBUTION_STEP = "DetectAttributionDrift"
REPORT_DIR = f"{PROCESSING_ROOT}/output/report"
# Under the execution's report prefix, beside drift.json.
ATTRIBUTION_FOLDER = "attribution"


@dataclass(frozen=True)
class AttributionSpec:
    """Model Monitor's feature-attribution drift on the drift job's window.

    Its job runs with the drift spec's instance, volume, key and VPC; only the role is its own.
    """

    role_arn: str
    ndcg_threshold: float
    # Captured rows explained per run, and the background rows SHAP averages over.
    max_rows: int
    background_rows: int


@dataclass(frozen=True)
class DriftPipelineSpec:
    region: str
    pipeline_name: str
    role_arn: str
    kms_key_arn: str
    artifacts_bucket: str
    capture_uri: str
    report_prefix: str
    code: CodeLocation
    image_uri: str
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    endpoint_name: str
    # The served model: a model package ARN or its model.tar.gz URI (baseline.json inside).
    baseline: str
    metrics_namespace: str
    psi_threshold: float
    window_hours: int
    # None: no attribution step (the served model has no registered explainability report).
    attribution: AttributionSpec | None = None
    # Above 1: list, summarise on this many instances, merge (see the module docstring).
    instance_count: int = 1
    # Every step's VpcConfig; None: SageMaker's own network.
    vpc: VpcSpec | None = None


class DriftParameter:
    WINDOW_HOURS = "WindowHours"
    PSI_THRESHOLD = "PsiThreshold"
    NDCG_THRESHOLD = "NdcgThreshold"
    INSTANCE_TYPE = "ProcessingInstanceType"


def build_definition(spec: DriftPipelineSpec) -> str:
    from pipelines.training_pipeline import canonical_json

    with sdk.sdk_environment(), sdk.config_validated_once():
        session = sdk.offline_session(spec.region, default_bucket=spec.artifacts_bucket)
        window = ParameterInteger(DriftParameter.WINDOW_HOURS, default_value=spec.window_hours)
        threshold = ParameterFloat(DriftParameter.PSI_THRESHOLD, default_value=spec.psi_threshold)
        instance_type = ParameterString(
            DriftParameter.INSTANCE_TYPE, default_value=spec.instance_type
        )
        parameters = [window, threshold, instance_type]
        report_uri = Join(
            on="/", values=[spec.report_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID]
        )
        judging = [
            "--psi-threshold",
            threshold.to_string(),
            "--output",
            REPORT_DIR,
            *_metrics_arguments(spec),
        ]
        job_arguments = [
            "drift.py",
            "--capture",
            spec.capture_uri,
            "--baseline",
            spec.baseline,
            "--window-hours",
            window.to_string(),
            *judging,
        ]
        if spec.instance_count > 1:
            steps = _sharded_steps(spec, session, instance_type, job_arguments, judging, report_uri)
        else:
            step_args = _processor(spec, session, spec.role_arn, instance_type).run(
                code=spec.code.runner_uri,
                inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
                outputs=[processing.s3_output("report", report_uri, REPORT_DIR)],
                arguments=job_arguments,
            )
            steps = [
                ProcessingStep(
                    name=STEP,
                    step_args=step_args,
                    description="Compare captured traffic with the training baseline",
                )
            ]
        if spec.attribution is not None:
            ndcg = ParameterFloat(
                DriftParameter.NDCG_THRESHOLD, default_value=spec.attribution.ndcg_threshold
            )
            parameters.append(ndcg)
            steps.append(
                _attribution_step(spec, spec.attribution, session, instance_type, window, ndcg)
            )
        pipeline = Pipeline(
            name=spec.pipeline_name,
            parameters=parameters,
            steps=steps,
            sagemaker_session=session,
            pipeline_experiment_config=None,
        )
        return canonical_json(pipeline.definition())


def _sharded_steps(
    spec: DriftPipelineSpec,
    session: Any,
    instance_type: Any,
    job_arguments: list[Any],
    judging: list[Any],
    report_uri: Any,
) -> list[Any]:
    """ListDriftWindow -> SummariseDrift (N instances) -> DetectDrift (the merge)."""
    manifest = shard_steps.run_uri(spec.report_prefix, shard_steps.MANIFEST_NAME)
    window = shard_steps.run_uri(spec.report_prefix, shard_steps.WINDOW_NAME)
    summaries = shard_steps.run_uri(spec.report_prefix, shard_steps.SUMMARIES_FOLDER)
    # The list step's copy of the baseline: the isolated summarise step cannot resolve
    # a model package ARN or read the served archive.
    baseline = shard_steps.run_uri(spec.report_prefix, f"{shard_steps.BASELINE_FOLDER}/")
    bundle = processing.bundle_input(spec.code.sourcedir_uri)
    report = processing.s3_output("report", report_uri, REPORT_DIR)
    # Lists the window in S3; with no capture at all it runs the whole (empty) job, so it
    # writes the report and publishes CaptureRecords=0 itself: network, like DetectDrift.
    list_args = _processor(spec, session, spec.role_arn, instance_type).run(
        code=spec.code.runner_uri,
        inputs=[bundle],
        outputs=[report],
        arguments=[*job_arguments, "--list-to", manifest],
    )
    listing = ProcessingStep(
        name=LIST_STEP, step_args=list_args, description="List the window's capture files"
    )
    summarise_processor = shard_steps.scaled(
        _processor(spec, session, spec.role_arn, instance_type, network_isolation=True),
        spec.instance_count,
    )
    summarise_args = summarise_processor.run(
        code=spec.code.runner_uri,
        inputs=[
            bundle,
            shard_steps.manifest_input("capture", manifest, shard_steps.CAPTURE_DIR, sharded=True),
            processing.s3_input("window", window, shard_steps.WINDOW_DIR),
            processing.s3_input("baseline", baseline, shard_steps.BASELINE_DIR),
        ],
        outputs=[processing.s3_output("summaries", summaries, shard_steps.SUMMARIES_OUTPUT_DIR)],
        arguments=[
            "drift.py",
            "--capture",
            shard_steps.CAPTURE_DIR,
            "--baseline",
            shard_steps.BASELINE_DIR,
            "--window-from",
            shard_steps.WINDOW_DIR,
            "--summary-to",
            shard_steps.SUMMARIES_OUTPUT_DIR,
        ],
    )
    summarise = ProcessingStep(
        name=SUMMARISE_STEP,
        step_args=summarise_args,
        description=f"Summarise the capture files on {spec.instance_count} instances",
        depends_on=[listing],
    )
    merge_args = _processor(spec, session, spec.role_arn, instance_type).run(
        code=spec.code.runner_uri,
        inputs=[
            bundle,
            processing.s3_input("summaries", summaries, shard_steps.SUMMARIES_INPUT_DIR),
            processing.s3_input("window", window, shard_steps.WINDOW_DIR),
        ],
        outputs=[report],
        # No --window-hours: the window is the list step's (window.json).
        arguments=[
            "drift.py",
            "--capture",
            spec.capture_uri,
            "--baseline",
            spec.baseline,
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
        description="Merge the summaries; compare captured traffic with the training baseline",
        depends_on=[summarise],
    )
    return [listing, summarise, merge]


def _processor(
    spec: DriftPipelineSpec,
    session: Any,
    role_arn: str,
    instance_type: Any,
    *,
    network_isolation: bool = False,
) -> Any:
    return processing.script_processor(
        session,
        role_arn=role_arn,
        image_uri=spec.image_uri,
        instance_type=instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        # Needs S3 listing, the registry and CloudWatch (see infra/policies/monitoring.py);
        # only the summarise step of a sharded run reads local files alone.
        network_isolation=network_isolation,
        environment=spec.code.job_environment,
        vpc=spec.vpc,
    )


def _metrics_arguments(spec: DriftPipelineSpec) -> list[str]:
    return [
        "--namespace",
        spec.metrics_namespace,
        "--endpoint-name",
        spec.endpoint_name,
        "--region",
        spec.region,
        "--publish",
    ]


def _attribution_step(
    spec: DriftPipelineSpec,
    attribution: AttributionSpec,
    session: Any,
    instance_type: Any,
    window: Any,
    ndcg: Any,
) -> Any:
    processor = _processor(spec, session, attribution.role_arn, instance_type)
    report_uri = Join(
        on="/",
        values=[spec.report_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, ATTRIBUTION_FOLDER],
    )
    step_args = processor.run(
        code=spec.code.runner_uri,
        inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
        outputs=[processing.s3_output("attribution", report_uri, REPORT_DIR)],
        arguments=[
            "attribution.py",
            "--capture",
            spec.capture_uri,
            "--baseline",
            spec.baseline,
            "--window-hours",
            window.to_string(),
            "--ndcg-threshold",
            ndcg.to_string(),
            "--max-rows",
            str(attribution.max_rows),
            "--background-rows",
            str(attribution.background_rows),
            "--output",
            REPORT_DIR,
            *_metrics_arguments(spec),
        ],
    )
    return ProcessingStep(
        name=ATTRIBUTION_STEP,
        step_args=step_args,
        description="Rank the window's SHAP attributions against the registered explanation",
    )
