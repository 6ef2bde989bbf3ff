"""The retraining pipeline, built with the SageMaker v3 SDK into a definition JSON.

    ValidateAndSplit -> Train -> Evaluate -> CheckMetric -+-> RegisterModel
                                                          +-> MetricBelowThreshold (fail)

Every job runs the code bundle Pulumi uploaded (content-addressed URIs in the spec) on the
managed scikit-learn image, with network isolation, inter-container encryption and the
stack's KMS key on volumes and outputs. Step outputs land under a per-execution prefix
(``.../<PipelineExecutionId>/...``), so runs never overwrite each other's data.

``build_definition`` is pure: same spec, same bytes, no AWS call (see pipelines/sdk.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines import processing, sdk
from training.metric_names import METRIC_KEYS

with sdk.sdk_environment():
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.shapes import (
        MetricDefinition,
    )
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import (
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.train.model_trainer import ModelTrainer
from pipelines.spec import (
    CONTENT_TYPES,
    PROCESSING_ROOT,
    RESPONSE_TYPES,
    SERVING_ENVIRONMENT,
    SPLITS,
    TRAINING_CODE_CHANNEL,
    TRAINING_SUBMIT_DIRECTORY,
    Parameter,
    Step,
    TrainingPipelineSpec,
)

# The evaluation step's output, read back by the condition step and the registry.
EVALUATION_FILE = "evaluation.json"
PROPERTY_FILE = "EvaluationReport"


@dataclass(frozen=True)
class _Parameters:
    input_data: Any
    processing_instance_type: Any
    training_instance_type: Any
    metric_threshold: Any
    approval_status: Any

    def all(self) -> list[Any]:
        return [
            self.input_data,
            self.processing_instance_type,
            self.training_instance_type,
            self.metric_threshold,
            self.approval_status,
        ]


def build_definition(spec: TrainingPipelineSpec) -> str:
    """Canonical definition JSON (sorted keys), ready for ``aws.sagemaker.Pipeline``."""
    # Step constructors create SDK sessions of their own, so the whole build runs in the
    # adapter's environment, not just the imports.
    with sdk.sdk_environment(), sdk.config_validated_once():
        return canonical_json(build_pipeline(spec).definition())


def canonical_json(definition: str) -> str:
    return json.dumps(json.loads(definition), sort_keys=True, separators=(",", ":"))


def build_pipeline(spec: TrainingPipelineSpec) -> Any:

    session = sdk.offline_session(spec.region, default_bucket=spec.artifacts_bucket)
    params = _parameters(spec)
    process = _process_step(spec, session, params)
    train = _train_step(spec, session, params, process)
    evaluate, report = _evaluate_step(spec, session, params, process, train)
    check = _check_step(spec, session, params, train, evaluate, report)
    return Pipeline(
        name=spec.pipeline_name,
        parameters=params.all(),
        steps=[process, train, evaluate, check],
        sagemaker_session=session,
        # No automatic Experiments trial per run: it would need extra IAM for the pipeline
        # role, and lineage is already in the registry and the model manifest.
        pipeline_experiment_config=None,
    )


def _parameters(spec: TrainingPipelineSpec) -> _Parameters:

    return _Parameters(
        input_data=ParameterString(Parameter.INPUT_DATA, default_value=spec.default_input_uri),
        processing_instance_type=ParameterString(
            Parameter.PROCESSING_INSTANCE_TYPE, default_value=spec.processing_instance_type
        ),
        training_instance_type=ParameterString(
            Parameter.TRAINING_INSTANCE_TYPE, default_value=spec.training_instance_type
        ),
        metric_threshold=ParameterFloat(
            Parameter.METRIC_THRESHOLD, default_value=spec.metric_threshold
        ),
        approval_status=ParameterString(
            Parameter.APPROVAL_STATUS, default_value=str(spec.approval_status)
        ),
    )


def _execution_uri(prefix: str, *parts: str) -> Any:

    return Join(on="/", values=[prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])


def _processor(spec: TrainingPipelineSpec, session: Any, params: _Parameters) -> Any:
    return processing.script_processor(
        session,
        role_arn=spec.processing_role_arn,
        image_uri=spec.image_uri,
        instance_type=params.processing_instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        network_isolation=True,
        environment=spec.code.job_environment,
    )


def _output_uri(step: Any, output: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri


def _process_step(spec: TrainingPipelineSpec, session: Any, params: _Parameters) -> Any:

    outputs = [
        processing.s3_output(
            split,
            _execution_uri(spec.processed_prefix, split),
            f"{PROCESSING_ROOT}/output/{split}",
        )
        for split in (*SPLITS, "report")
    ]
    step_args = _processor(spec, session, params).run(
        code=spec.code.runner_uri,
        inputs=[
            processing.s3_input("raw", params.input_data, f"{PROCESSING_ROOT}/input/raw"),
            processing.bundle_input(spec.code.sourcedir_uri),
        ],
        outputs=outputs,
        arguments=["process.py"],
    )
    return ProcessingStep(
        name=Step.PROCESS,
        step_args=step_args,
        description="Validate raw data against the data contract, then split it",
    )


def _train_step(spec: TrainingPipelineSpec, session: Any, params: _Parameters, process: Any) -> Any:

    trainer = ModelTrainer(
        training_image=spec.image_uri,
        role=spec.training_role_arn,
        sagemaker_session=session,
        compute=Compute(
            instance_type=params.training_instance_type,
            instance_count=spec.training_instance_count,
            volume_size_in_gb=spec.volume_size_gb,
            volume_kms_key_id=spec.kms_key_arn,
        ),
        networking=Networking(
            enable_network_isolation=True, enable_inter_container_traffic_encryption=True
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=spec.max_runtime_seconds),
        output_data_config=OutputDataConfig(
            s3_output_path=spec.models_prefix, kms_key_id=spec.kms_key_arn
        ),
        # Script mode through the image's training toolkit, not ModelTrainer's source_code
        # (which uploads SDK driver scripts to S3 while the definition is built).
        hyperparameters={
            **spec.hyperparameters,
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": TRAINING_SUBMIT_DIRECTORY,
            "sagemaker_region": spec.region,
        },
        environment=spec.code.job_environment or None,
        base_job_name=spec.pipeline_name,
    ).with_metric_definitions(
        [
            MetricDefinition(name=f"validation:{name}", regex=f"validation:{name}=([0-9.]+);")
            for name in sorted(METRIC_KEYS)
        ]
    )
    step_args = trainer.train(
        input_data_config=[
            InputData(
                channel_name=TRAINING_CODE_CHANNEL,
                data_source=spec.code.sourcedir_uri,
            ),
            *(
                InputData(channel_name=split, data_source=_output_uri(process, split))
                for split in ("train", "validation")
            ),
        ]
    )
    return TrainingStep(
        name=Step.TRAIN, step_args=step_args, description="Train the churn model (script mode)"
    )


def _evaluate_step(
    spec: TrainingPipelineSpec, session: Any, params: _Parameters, process: Any, train: Any
) -> tuple[Any, Any]:

    report = PropertyFile(name=PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE)
    step_args = _processor(spec, session, params).run(
        code=spec.code.runner_uri,
        inputs=[
            processing.s3_input(
                "model",
                train.properties.ModelArtifacts.S3ModelArtifacts,
                f"{PROCESSING_ROOT}/model",
            ),
            processing.s3_input("test", _output_uri(process, "test"), f"{PROCESSING_ROOT}/test"),
            processing.bundle_input(spec.code.sourcedir_uri),
        ],
        outputs=[
            processing.s3_output(
                "evaluation",
                _execution_uri(spec.evaluation_prefix),
                f"{PROCESSING_ROOT}/evaluation",
            )
        ],
        arguments=["evaluate.py"],
    )
    step = ProcessingStep(
        name=Step.EVALUATE,
        step_args=step_args,
        property_files=[report],
        description="Score the test split; verify the model hash first",
    )
    return step, report


def _check_step(
    spec: TrainingPipelineSpec,
    session: Any,
    params: _Parameters,
    train: Any,
    evaluate: Any,
    report: Any,
) -> Any:

    metric = JsonGet(step_name=evaluate.name, property_file=report, json_path=spec.metric_json_path)
    evaluation_uri = Join(on="/", values=[_output_uri(evaluate, "evaluation"), EVALUATION_FILE])
    model = ModelBuilder(
        image_uri=spec.image_uri,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=spec.training_role_arn,
        sagemaker_session=session,
        env_vars=dict(SERVING_ENVIRONMENT),
    )
    register_args = model.register(
        model_package_group_name=spec.model_package_group,
        content_types=list(CONTENT_TYPES),
        response_types=list(RESPONSE_TYPES),
        inference_instances=list(spec.serving_instance_types),
        transform_instances=list(spec.serving_instance_types),
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri)
        ),
        approval_status=params.approval_status,
        description=f"{spec.pipeline_name}: gated on {spec.metric_name}",
        customer_metadata_properties={
            "metric_name": spec.metric_name,
            "code_sourcedir": spec.code.sourcedir_uri,
            **({} if spec.code.commit is None else {"code_commit": spec.code.commit}),
        },
    )
    register = ModelStep(name=Step.REGISTER, step_args=register_args)
    fail = FailStep(
        name=Step.FAIL,
        error_message=Join(
            on=" ",
            values=[
                f"{spec.metric_name} on the test split is",
                metric,
                "- below the threshold",
                params.metric_threshold,
                "- so the model was not registered.",
            ],
        ),
    )
    return ConditionStep(
        name=Step.CHECK,
        conditions=[ConditionGreaterThanOrEqualTo(left=metric, right=params.metric_threshold)],
        if_steps=[register],
        else_steps=[fail],
    )
