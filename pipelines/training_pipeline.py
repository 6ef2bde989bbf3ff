"""The retraining pipeline, built with the SageMaker v3 SDK into a definition JSON.

    ValidateAndSplit -> Train -> Evaluate -> CheckMetric -+-> CheckBias -+-> RegisterModel
                                                          |              |   -> PublishModelCard
                                                          |              +-> BiasLimitExceeded
                                                          +-> MetricBelowThreshold (fail)

A stack that tunes has a Tune step in Train's place: a Bayesian search of training jobs, each
configured as Train's job is; the best job's model goes on to Evaluate and RegisterModel.

Every job runs the code bundle Pulumi uploaded (content-addressed URIs in the spec) on the
managed scikit-learn image, with inter-container encryption and the stack's KMS key on
volumes and outputs, and all but one network-isolated: PublishModelCard calls the SageMaker
API (CreateModelCard), so it runs with network, as its own narrow role. With a VpcSpec every
job (processing, training, and each of the tuning job's) runs in the stack's subnets and
security groups; the card step then reaches the SageMaker API through the VPC's interface
endpoint, and isolated jobs' S3 transfers go through the VPC. Step outputs land
under a per-execution prefix (``.../<PipelineExecutionId>/...``), so runs never overwrite
each other's data.

``build_definition`` is pure: same spec, same bytes, no AWS call (see pipelines/sdk.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines import processing, sdk
from training.metric_names import METRIC_KEYS
from training.search_space import Range

with sdk.sdk_environment():
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
    from sagemaker.core.shapes import MetricDefinition, VpcConfig
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep, TuningStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.configs import (
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.train.model_trainer import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner
from pipelines.spec import (
    BIAS_REPORT_FILE,
    CONTENT_TYPES,
    EVALUATION_FILE,
    EXPLAINABILITY_REPORT_FILE,
    GATES_FILE,
    MODEL_CARD_FILE,
    MODEL_CARD_METADATA_KEY,
    MODELS_KEY_PREFIX,
    PROCESSING_ROOT,
    RESPONSE_TYPES,
    SERVING_ENVIRONMENT,
    SPLITS,
    TRAINING_CODE_CHANNEL,
    TRAINING_SUBMIT_DIRECTORY,
    Parameter,
    Step,
    TrainingPipelineSpec,
    TuningSpec,
    metric_regex,
    objective_metric,
)

# The evaluation step's outputs, read back by the condition steps and the registry.
PROPERTY_FILE = "EvaluationReport"
GATES_PROPERTY_FILE = "GateReport"
# gates.json: how many configured bias limits the model exceeds (training/evaluate.py).
BIAS_VIOLATIONS_PATH = "bias_violations"


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
    model_step, model_uri = (
        _train_step(spec, session, params, process)
        if spec.tuning is None
        else _tune_step(spec, spec.tuning, session, params, process)
    )
    evaluate, reports = _evaluate_step(spec, session, params, process, model_uri)
    check = _check_step(spec, session, params, model_uri, evaluate, reports)
    return Pipeline(
        name=spec.pipeline_name,
        parameters=params.all(),
        steps=[process, model_step, evaluate, check],
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


def _processor(
    spec: TrainingPipelineSpec,
    session: Any,
    params: _Parameters,
    *,
    role_arn: str | None = None,
    network_isolation: bool = True,
) -> Any:
    return processing.script_processor(
        session,
        role_arn=role_arn or spec.processing_role_arn,
        image_uri=spec.image_uri,
        instance_type=params.processing_instance_type,
        volume_size_gb=spec.volume_size_gb,
        kms_key_arn=spec.kms_key_arn,
        max_runtime_seconds=spec.max_runtime_seconds,
        network_isolation=network_isolation,
        environment=spec.code.job_environment,
        vpc=spec.vpc,
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


def _trainer(spec: TrainingPipelineSpec, session: Any, params: _Parameters) -> Any:
    """The training job Train runs, and each of Tune's: isolated, encrypted, script mode."""
    return ModelTrainer(
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
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
            # CreateTrainingJob's VpcConfig; None leaves it out of the request.
            subnets=None if spec.vpc is None else list(spec.vpc.subnets),
            security_group_ids=None if spec.vpc is None else list(spec.vpc.security_group_ids),
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
        environment=spec.code.training_environment,
        base_job_name=spec.pipeline_name,
    )


def _metric_definitions() -> list[tuple[str, str]]:
    """(name, regex) of every metric train.py prints for the validation split."""
    return [(objective_metric(name), metric_regex(name)) for name in sorted(METRIC_KEYS)]


def _training_inputs(spec: TrainingPipelineSpec, process: Any) -> list[Any]:
    return [
        InputData(channel_name=TRAINING_CODE_CHANNEL, data_source=spec.code.sourcedir_uri),
        *(
            InputData(channel_name=split, data_source=_output_uri(process, split))
            for split in ("train", "validation")
        ),
    ]


def _train_step(
    spec: TrainingPipelineSpec, session: Any, params: _Parameters, process: Any
) -> tuple[Any, Any]:
    """The Train step and its model archive's URI."""
    trainer = _trainer(spec, session, params).with_metric_definitions(
        [MetricDefinition(name=name, regex=regex) for name, regex in _metric_definitions()]
    )
    step_args = trainer.train(input_data_config=_training_inputs(spec, process))
    step = TrainingStep(
        name=Step.TRAIN, step_args=step_args, description="Train the churn model (script mode)"
    )
    return step, step.properties.ModelArtifacts.S3ModelArtifacts


class _SecureTuner(HyperparameterTuner):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's tuner, its training jobs keeping the trainer's security settings.

    sagemaker-train 1.27's ``HyperparameterTuner._build_training_job_definition`` copies the
    trainer's image, role, channels, output config (with its key), instances and stopping
    condition, but drops the volume key (Compute.volume_kms_key_id), network isolation and
    inter-container encryption (Networking): the tuning job's training jobs would run with
    network and a volume under an AWS-owned key. HyperParameterTrainingJobDefinition has
    all three (botocore's CreateHyperParameterTuningJob shape); they are put back here.

    The VpcConfig it does copy (Networking._to_vpc_config), but inside ``try: ... except
    Exception: pass``: any failure there would silently start the search's jobs outside the
    VPC. So it is set here from the trainer too.
    """

    def _build_training_job_definition(self, inputs: Any) -> Any:
        definition = super()._build_training_job_definition(inputs)
        trainer = self.model_trainer
        definition.resource_config.volume_kms_key_id = trainer.compute.volume_kms_key_id
        definition.enable_network_isolation = trainer.networking.enable_network_isolation
        definition.enable_inter_container_traffic_encryption = (
            trainer.networking.enable_inter_container_traffic_encryption
        )
        networking = trainer.networking
        if networking.subnets is not None:
            definition.vpc_config = VpcConfig(
                subnets=networking.subnets, security_group_ids=networking.security_group_ids
            )
        return definition


def parameter_range(r: Range) -> Any:
    """A search range as the SDK takes it: integer hyperparameters get whole numbers."""
    if r.integer:
        return IntegerParameter(int(r.low), int(r.high), scaling_type=str(r.scale))
    return ContinuousParameter(r.low, r.high, scaling_type=str(r.scale))


def _tune_step(
    spec: TrainingPipelineSpec,
    tuning: TuningSpec,
    session: Any,
    params: _Parameters,
    process: Any,
) -> tuple[Any, Any]:
    """The Tune step and its best training job's model archive's URI."""
    tuner = _SecureTuner(
        model_trainer=_trainer(spec, session, params),
        objective_metric_name=objective_metric(spec.metric_name),
        objective_type="Maximize",
        hyperparameter_ranges={r.name: parameter_range(r) for r in tuning.ranges},
        metric_definitions=[
            {"Name": name, "Regex": regex} for name, regex in _metric_definitions()
        ],
        strategy="Bayesian",
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type=tuning.early_stopping,
        base_tuning_job_name=spec.pipeline_name,
    )
    step = TuningStep(
        name=Step.TUNE,
        step_args=tuner.tune(inputs=_training_inputs(spec, process)),
        description=(
            f"Bayesian search: {tuning.max_jobs} training jobs, {tuning.max_parallel_jobs} "
            f"at a time, maximising {objective_metric(spec.metric_name)}"
        ),
    )
    # Training jobs write <S3OutputPath>/<job name>/output/model.tar.gz; index 0 of the
    # step's TrainingJobSummaries is the best job (TuningStep.get_top_model_s3_uri).
    model_uri = step.get_top_model_s3_uri(
        top_k=0, s3_bucket=spec.artifacts_bucket, prefix=MODELS_KEY_PREFIX
    )
    return step, model_uri


@dataclass(frozen=True)
class _Reports:
    """The evaluate step's property files: its metrics and its gate counts."""

    evaluation: Any
    gates: Any


def _evaluate_step(
    spec: TrainingPipelineSpec, session: Any, params: _Parameters, process: Any, model_uri: Any
) -> tuple[Any, _Reports]:

    reports = _Reports(
        evaluation=PropertyFile(name=PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE),
        gates=PropertyFile(name=GATES_PROPERTY_FILE, output_name="evaluation", path=GATES_FILE),
    )
    step_args = _processor(spec, session, params).run(
        code=spec.code.runner_uri,
        inputs=[
            processing.s3_input("model", model_uri, f"{PROCESSING_ROOT}/model"),
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
        arguments=[
            "evaluate.py",
            *spec.bias.arguments(),
            # A limit exceeded is the CheckBias step's to judge (gates.json), with its own
            # Fail step; a failing job would stop the run before it could say why.
            "--no-fail-on-bias",
            "--explain-rows",
            str(spec.explain_rows),
            "--background-rows",
            str(spec.background_rows),
            # The card's lineage: the job sees only local mounts, the pipeline knows where.
            "--model-name",
            spec.model_name,
            "--training-data",
            params.input_data,
            "--test-data",
            _output_uri(process, "test"),
            "--sourcedir",
            spec.code.sourcedir_uri,
            "--image",
            spec.image_uri,
            "--model-artifact",
            model_uri,
        ],
    )
    step = ProcessingStep(
        name=Step.EVALUATE,
        step_args=step_args,
        property_files=[reports.evaluation, reports.gates],
        description=(
            "Score the test split (hash-verified model); bias, SHAP attributions, model card"
        ),
    )
    return step, reports


def _check_step(
    spec: TrainingPipelineSpec,
    session: Any,
    params: _Parameters,
    model_uri: Any,
    evaluate: Any,
    reports: _Reports,
) -> Any:
    """The metric gate, then the bias gate; each refusal is its own Fail step and message."""
    metric = JsonGet(
        step_name=evaluate.name, property_file=reports.evaluation, json_path=spec.metric_json_path
    )
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
        if_steps=[_bias_step(spec, session, params, model_uri, evaluate, reports)],
        else_steps=[fail],
    )


def _bias_step(
    spec: TrainingPipelineSpec,
    session: Any,
    params: _Parameters,
    model_uri: Any,
    evaluate: Any,
    reports: _Reports,
) -> Any:
    violations = JsonGet(
        step_name=evaluate.name, property_file=reports.gates, json_path=BIAS_VIOLATIONS_PATH
    )
    register = _register_step(spec, session, params, model_uri, evaluate)
    fail = FailStep(
        name=Step.FAIL_BIAS,
        error_message=Join(
            on=" ",
            values=[
                "bias on the test split exceeds",
                violations,
                "configured limit(s) - so the model was not registered; see",
                _evaluation_file(evaluate, BIAS_REPORT_FILE),
            ],
        ),
    )
    return ConditionStep(
        name=Step.CHECK_BIAS,
        # 0 whenever the stack sets no limits (bias is then reported, never gated).
        conditions=[ConditionEquals(left=violations, right=0)],
        if_steps=[register, _publish_card_step(spec, session, params, evaluate, register)],
        else_steps=[fail],
    )


def _evaluation_file(evaluate: Any, name: str) -> Any:
    return Join(on="/", values=[_output_uri(evaluate, "evaluation"), name])


def _register_step(
    spec: TrainingPipelineSpec, session: Any, params: _Parameters, model_uri: Any, evaluate: Any
) -> Any:
    model = ModelBuilder(
        image_uri=spec.image_uri,
        s3_model_data_url=model_uri,
        role_arn=spec.training_role_arn,
        sagemaker_session=session,
        env_vars=dict(SERVING_ENVIRONMENT),
    )

    def report(name: str) -> Any:
        return MetricsSource(
            content_type="application/json", s3_uri=_evaluation_file(evaluate, name)
        )

    register_args = model.register(
        model_package_group_name=spec.model_package_group,
        content_types=list(CONTENT_TYPES),
        response_types=list(RESPONSE_TYPES),
        inference_instances=list(spec.serving_instance_types),
        transform_instances=list(spec.serving_instance_types),
        # Model Monitor's model-quality statistics, and Clarify's bias and explainability
        # analysis files, where CreateModelPackage's ModelMetrics keeps them.
        model_metrics=ModelMetrics(
            model_statistics=report(EVALUATION_FILE),
            bias=report(BIAS_REPORT_FILE),
            explainability=report(EXPLAINABILITY_REPORT_FILE),
        ),
        approval_status=params.approval_status,
        description=f"{spec.pipeline_name}: gated on {spec.metric_name} and bias limits",
        # Values may be pipeline expressions (the SDK's register() documents
        # dict[str, PipelineVariable]); the card's URI depends on the execution.
        customer_metadata_properties={
            "metric_name": spec.metric_name,
            "code_sourcedir": spec.code.sourcedir_uri,
            MODEL_CARD_METADATA_KEY: _evaluation_file(evaluate, MODEL_CARD_FILE),
            **({} if spec.code.commit is None else {"code_commit": spec.code.commit}),
        },
    )
    return ModelStep(name=Step.REGISTER, step_args=register_args)


def _publish_card_step(
    spec: TrainingPipelineSpec, session: Any, params: _Parameters, evaluate: Any, register: Any
) -> Any:
    # Network, not isolation: CreateModelCard is an API call. The role it runs as may only
    # read and write evaluation reports and create this registry's cards (infra/policies).
    processor = _processor(
        spec, session, params, role_arn=spec.model_card_role_arn, network_isolation=False
    )
    step_args = processor.run(
        code=spec.code.runner_uri,
        inputs=[processing.bundle_input(spec.code.sourcedir_uri)],
        outputs=[],
        arguments=[
            "publish_card.py",
            "--card",
            _evaluation_file(evaluate, MODEL_CARD_FILE),
            "--model-package-arn",
            register.properties.ModelPackageArn,
            "--card-name",
            Join(on="", values=[spec.model_card_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID]),
            # SageMaker encrypts the card it keeps with the stack key, as S3 does the file.
            "--kms-key-id",
            spec.kms_key_arn,
            "--region",
            spec.region,
        ],
    )
    return ProcessingStep(
        name=Step.PUBLISH_CARD,
        step_args=step_args,
        description="Fill in the registered version's ARN; create the card where supported",
    )
