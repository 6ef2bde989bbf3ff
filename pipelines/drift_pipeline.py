"""The drift-monitoring pipeline: the jobs that read captured traffic alone (no labels).

    DetectDrift (processing): capture window -> drift.json + drift.html, CloudWatch metrics
    DetectAttributionDrift (processing, beside it): the same window's SHAP feature ranking
        against the registered explainability report -> NDCG, CloudWatch metrics

Both run the same code bundle as the training pipeline (``drift.py`` and ``attribution.py``
inside it, launched by ``bundle_runner.py``) on the same managed scikit-learn image, each as
its own role. Reports land next to the captured data, under a per-execution prefix. Like the
training definition it builds offline and byte-for-byte the same from the same spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import processing, sdk
from pipelines.spec import PROCESSING_ROOT, CodeLocation

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
ATTRIBUTION_STEP = "DetectAttributionDrift"
REPORT_DIR = f"{PROCESSING_ROOT}/output/report"
# Under the execution's report prefix, beside drift.json.
ATTRIBUTION_FOLDER = "attribution"


@dataclass(frozen=True)
class AttributionSpec:
    """Model Monitor's feature-attribution drift on the drift job's window."""

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
        step_args = _processor(spec, session, spec.role_arn, instance_type).run(
            code=spec.code.runner_uri,
            inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
            outputs=[processing.s3_output("report", report_uri, REPORT_DIR)],
            arguments=[
                "drift.py",
                "--capture",
                spec.capture_uri,
                "--baseline",
                spec.baseline,
                "--window-hours",
                window.to_string(),
                "--psi-threshold",
                threshold.to_string(),
                "--output",
                REPORT_DIR,
                *_metrics_arguments(spec),
            ],
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


def _processor(spec: DriftPipelineSpec, session: Any, role_arn: str, instance_type: Any) -> Any:
    return processing.script_processor(
        session,
        role_arn=role_arn,
        image_uri=spec.image_uri,
        instance_type=instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        # Needs S3 listing, the registry and CloudWatch (see infra/policies/monitoring.py).
        network_isolation=False,
        environment=spec.code.job_environment,
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
