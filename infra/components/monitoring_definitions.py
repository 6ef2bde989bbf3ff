"""The monitoring pipelines' definitions, from stack settings and resolved resource values.

Each is built offline by pipelines/ (drift_pipeline.py, quality_pipeline.py); this module
only turns settings and names into their specs, so the component declares resources and
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.components.training_pipeline import bias_spec
from infra.config.settings import BiasMetric, Settings
from infra.naming import CapturePrefix, Naming
from infra.stack_files import CodeFiles
from pipelines.spec import VpcSpec
from training.packaging import FRAMEWORK_VERSION

JOB_VOLUME_GB = 30
JOB_MAX_RUNTIME_SECONDS = 2 * 60 * 60
# What the quality job publishes as ModelQuality's Metric (monitoring/quality_metrics.py):
# Model Monitor's binary-classification metrics it compares, and the calibration pair.
QUALITY_METRICS = ("auc", "accuracy", "precision", "recall", "f1", "brier", "ece")
# Clarify's post-training metrics: how the served model treats the facet's group on live
# traffic. The dashboard draws these, and any metric a limit names.
POST_TRAINING_BIAS = (
    BiasMetric.DPPL,
    BiasMetric.DI,
    BiasMetric.DCACC,
    BiasMetric.RD,
    BiasMetric.AD,
)


@dataclass(frozen=True)
class JobInputs:
    """What every monitoring job reads or writes, once Pulumi has resolved it."""

    kms_key_arn: str
    artifacts_bucket: str
    capture_bucket: str
    # The served model: its package ARN (or, for the drift job alone, its archive URI).
    baseline: str
    # The jobs' VpcConfig; None: SageMaker's own network.
    vpc: VpcSpec | None = None

    @property
    def report_prefix(self) -> str:
        return f"s3://{self.capture_bucket}/{CapturePrefix.MONITORING}"


def drift_definition(
    settings: Settings,
    naming: Naming,
    code: CodeFiles,
    inputs: JobInputs,
    role_arn: str,
    attribution_role_arn: str,
) -> str:
    """The drift job, and beside it the attribution job when it has a role ("" for none)."""
    from pipelines import sdk
    from pipelines.drift_pipeline import AttributionSpec, DriftPipelineSpec, build_definition

    monitoring, explainability = settings.monitoring, settings.explainability
    return build_definition(
        DriftPipelineSpec(
            region=naming.region,
            pipeline_name=naming.drift_pipeline,
            role_arn=role_arn,
            kms_key_arn=inputs.kms_key_arn,
            artifacts_bucket=inputs.artifacts_bucket,
            capture_uri=naming.capture_uri(inputs.capture_bucket),
            report_prefix=f"{inputs.report_prefix}{naming.endpoint}",
            code=code.location(inputs.artifacts_bucket),
            image_uri=sdk.image_uri(naming.region, FRAMEWORK_VERSION, "training"),
            instance_type=monitoring.drift_instance_type,
            instance_count=monitoring.drift_instance_count,
            volume_size_gb=JOB_VOLUME_GB,
            max_runtime_seconds=JOB_MAX_RUNTIME_SECONDS,
            endpoint_name=naming.endpoint,
            baseline=inputs.baseline,
            metrics_namespace=naming.metrics_namespace,
            psi_threshold=monitoring.drift_psi_threshold,
            window_hours=monitoring.drift_window_hours,
            attribution=(
                AttributionSpec(
                    role_arn=attribution_role_arn,
                    ndcg_threshold=explainability.ndcg_threshold,
                    max_rows=explainability.live_rows,
                    background_rows=explainability.background_rows,
                )
                if attribution_role_arn
                else None
            ),
            vpc=inputs.vpc,
        )
    )


def quality_definition(
    settings: Settings, naming: Naming, code: CodeFiles, inputs: JobInputs, role_arn: str
) -> str:
    from pipelines import sdk
    from pipelines.quality_pipeline import QualityPipelineSpec, build_definition

    monitoring = settings.monitoring
    return build_definition(
        QualityPipelineSpec(
            region=naming.region,
            pipeline_name=naming.quality_pipeline,
            role_arn=role_arn,
            kms_key_arn=inputs.kms_key_arn,
            artifacts_bucket=inputs.artifacts_bucket,
            capture_uri=naming.capture_uri(inputs.capture_bucket),
            ground_truth_uri=naming.ground_truth_uri(inputs.capture_bucket),
            report_prefix=f"{inputs.report_prefix}{naming.endpoint}",
            code=code.location(inputs.artifacts_bucket),
            image_uri=sdk.image_uri(naming.region, FRAMEWORK_VERSION, "training"),
            # One processing instance type for every monitoring job of the stack.
            instance_type=monitoring.drift_instance_type,
            instance_count=monitoring.quality_instance_count,
            volume_size_gb=JOB_VOLUME_GB,
            max_runtime_seconds=JOB_MAX_RUNTIME_SECONDS,
            endpoint_name=naming.endpoint,
            baseline=inputs.baseline,
            metrics_namespace=naming.metrics_namespace,
            window_hours=monitoring.quality_window_hours,
            label_delay_hours=monitoring.label_delay_hours,
            alpha=monitoring.quality_alpha,
            min_labels=monitoring.quality_min_labels,
            min_drop=monitoring.quality_min_drop,
            bias=bias_spec(settings),
            vpc=inputs.vpc,
        )
    )


def bias_lines(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(Facet, Metric) dimensions the dashboard draws: the post-training metrics and any
    limited one, per facet as the quality job names it (``column=values``)."""
    metrics = [
        *POST_TRAINING_BIAS,
        *(m for m in settings.bias.limits if m not in POST_TRAINING_BIAS),
    ]
    return tuple(
        (facet.argument, str(metric)) for facet in bias_spec(settings).facets for metric in metrics
    )
