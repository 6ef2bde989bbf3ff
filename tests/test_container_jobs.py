"""The staging stack's pipelines, run step by step inside SageMaker's scikit-learn image.

The definitions are the planned Pipeline resources' own JSON, and the code and data are the
files the plan uploads (its BucketObjectv2 sources), so nothing is rebuilt for the test.
tests/pipeline_steps.py runs each step as SageMaker would: processing steps through
bundle_runner.py with their arguments and inputs, Train through sagemaker-training's
``train`` entry (the image's), with the toolkit installing requirements.txt from the
bundled Python 3.12 wheels offline. The trained model.tar.gz is then served by the image's
worker, and the drift pipeline's job reads that worker's answers from (moto) S3.

Staging tunes (a Tune step in Train's place); the chain above runs staging with tuning off,
and the Tune path runs after it, reusing the chain's split: one more training job and one
more Evaluate.
"""

from __future__ import annotations

import copy
import io
import json
import re
import socket
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import joblib
import pandas as pd
import pytest
from conftest import REPO, PlannedStack
from pipeline_expressions import DefinitionError, walk
from pipeline_steps import (
    LocalPipeline,
    ObjectStore,
    PipelineFailedError,
    PipelineRun,
    StepFailedError,
    ordered_steps,
)
from sagemaker_image import image_filesystem, serving_container

from demo.embedded_aws import EmbeddedAws, embedded_aws
from inference.capture import capture_record
from inference.server import free_port
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from pipelines.spec import Step
from training import dataset as ds
from training.hashing import sha256_bytes
from training.paths import GIT_SHA_ENV

STACK = "staging"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
UPLOAD = "aws:s3/bucketObjectv2:BucketObjectv2"
# This 2-vCPU machine runs several test processes at once; OpenMP's spinning threads then
# make the 200-iteration fit several times slower. One thread gives the same model.
MACHINE = {"OMP_NUM_THREADS": "1"}
SERVED_ROWS, ROWS_PER_REQUEST = 300, 30
# Capture time of the served requests: inside the drift job's window, which ends "now".
MINUTES_AGO = timedelta(minutes=10)


def definition(stack: PlannedStack, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(stack.one(PIPELINE, name).inputs["pipelineDefinition"])
    return loaded


def uploaded(stack: PlannedStack, root: Path) -> ObjectStore:
    """S3 as the stack leaves it: every object the plan uploads, at its bucket and key."""
    store = ObjectStore(root)
    for resource in stack.all(UPLOAD):
        source = Path(resource.inputs["source"]["path"])
        uri = f"s3://{resource.inputs['bucket']}/{resource.inputs['key']}"
        store.put(uri, source if source.is_absolute() else Path(__file__).parent.parent / source)
    return store


def step(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in document["Steps"] if s["Name"] == name)
    return found


@dataclass(frozen=True)
class Chain:
    stack: PlannedStack
    definition: dict[str, Any]
    store: ObjectStore
    run: PipelineRun
    # What PublishModelCard left in (moto) S3 and SageMaker: the card file and the card.
    published_card: dict[str, Any]
    model_card: dict[str, Any]

    def properties(self, name: str) -> dict[str, Any]:
        return self.run.context.properties[name]

    def output_uri(self, name: str, output: str) -> str:
        path = f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"
        uri: str = walk(self.properties(name), path, name)
        return uri

    def model_dir(self) -> Path:
        return self.run.jobs[Step.TRAIN].fs.ml / "model"


@pytest.fixture(scope="module")
def staging() -> PlannedStack:
    """Staging with tuning off: its Train step, the single training job dev runs (and any
    stack that does not tune), kept covered end to end here; the Tune path is below."""
    config = load_stack_config(REPO, STACK)
    training = {**json.loads(config.values["mlops:training"]), "tuning": {"enabled": False}}
    values = {**config.values, "mlops:training": json.dumps(training)}
    return PlannedStack(plan_config(replace(config, values=values)))


def aws_machine(aws: EmbeddedAws) -> dict[str, str]:
    """What the platform gives a job that may reach AWS, pointed at moto instead."""
    return {
        **MACHINE,
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": aws.region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def mirror_into(aws: EmbeddedAws) -> Callable[[ObjectStore], None]:
    """Copy every object of the stand-in into moto's S3, as the jobs with network see it."""

    def mirror(store: ObjectStore) -> None:
        for path in sorted(p for p in store.root.rglob("*") if p.is_file()):
            uri = f"s3://{path.relative_to(store.root).as_posix()}"
            bucket, key = _bucket(aws, uri)
            aws.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    return mirror


@pytest.fixture(scope="module")
def chain(staging: PlannedStack, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("training-pipeline")
    document = definition(staging, "training")
    store = uploaded(staging, root / "s3")
    publish = step_arguments(document, Step.PUBLISH_CARD)
    region = _argument(publish, "--region")
    with embedded_aws(region) as aws:
        run = LocalPipeline(
            document, store, root / "jobs", job_environment=aws_machine(aws),
            region=region, mirror_s3=mirror_into(aws),
        ).run()  # fmt: skip
        resolved = run.context.properties[Step.PUBLISH_CARD]["AppSpecification"]
        arguments = resolved["ContainerArguments"]
        bucket, key = _bucket(aws, _argument(arguments, "--card"))
        card = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        kept = aws.client("sagemaker").describe_model_card(
            ModelCardName=_argument(arguments, "--card-name")
        )
    return Chain(staging, document, store, run, card, kept)


def step_arguments(document: dict[str, Any], name: str) -> list[Any]:
    """A step's container arguments, wherever it nests."""
    found = [s for s in walk_steps(document["Steps"]) if s["Name"] == name]
    (only,) = found
    arguments: list[Any] = only["Arguments"]["AppSpecification"]["ContainerArguments"]
    return arguments


def walk_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in steps:
        yield item
        branches = item.get("Arguments", {}) if item["Type"] == "Condition" else {}
        yield from walk_steps([*branches.get("IfSteps", []), *branches.get("ElseSteps", [])])


# --- ValidateAndSplit ---------------------------------------------------------------------


def test_validate_and_split_installs_pandera_offline_and_splits_the_uploaded_data(
    chain: Chain,
) -> None:
    job = chain.run.jobs[Step.PROCESS]
    assert "pandera-0.35.0.dist-info" in job.installed()
    # The bundle adds to the image; it replaces none of the image's own packages.
    assert job.removed() == []
    csv = next(r for r in chain.stack.all(UPLOAD) if r.inputs["key"].endswith(".csv"))
    raw = chain.store.read_bytes(f"s3://{csv.inputs['bucket']}/{csv.inputs['key']}")
    rows = {}
    for split in ("train", "validation", "test"):
        prefix = chain.output_uri(Step.PROCESS, split)
        lineage = json.loads(chain.store.read_bytes(f"{prefix}/lineage.json"))
        assert lineage["raw_sha256"] == sha256_bytes(raw)
        frame = pd.read_csv(io.BytesIO(chain.store.read_bytes(f"{prefix}/{split}.csv")))
        rows[split] = len(frame)
    assert rows == {"train": 3500, "validation": 750, "test": 750}
    report = chain.store.read_bytes(
        f"{chain.output_uri(Step.PROCESS, 'report')}/validation_report.json"
    )
    assert json.loads(report) == {"failures": [], "ok": True, "rows": 5000}


# --- Train ----------------------------------------------------------------------------------


def test_train_runs_through_the_toolkit_with_the_definitions_hyperparameters(
    chain: Chain,
) -> None:
    job, arguments = chain.run.jobs[Step.TRAIN], chain.properties(Step.TRAIN)
    # The toolkit unpacked the code channel's bundle and installed its requirements offline.
    assert "Installing dependencies from requirements.txt" in job.log
    assert "Looking in links: /opt/ml/code/wheels" in job.log
    installed = re.search(r"Successfully installed (.+)", job.log)
    assert installed and "pandera-0.35.0" in installed.group(1).split()
    assert "pandera-0.35.0.dist-info" in job.installed()
    assert job.removed() == []
    # ...and ran train.py with every hyperparameter of ours as a command-line argument.
    command = re.search(r"^\S+/python3?(?:\.12)? train\.py (.+)$", job.log, re.MULTILINE)
    assert command, job.log[-2000:]
    ours = {k: v for k, v in arguments["HyperParameters"].items() if not k.startswith("sagemaker_")}
    assert command.group(1).split() == [t for k, v in sorted(ours.items()) for t in (f"--{k}", v)]

    manifest = json.loads((chain.model_dir() / "manifest.json").read_text())
    assert manifest["hyperparameters"]["max_iter"] == int(ours["max_iter"])
    assert manifest["hyperparameters"]["class_weight"] == ours["class_weight"]
    assert manifest["libraries"]["python"].startswith("3.12.")
    assert manifest["libraries"]["scikit-learn"] == "1.9.0"
    assert manifest["data"]["train_rows"] == 3500


def test_every_metric_definition_matches_the_training_log(chain: Chain) -> None:
    definitions = chain.properties(Step.TRAIN)["AlgorithmSpecification"]["MetricDefinitions"]
    reported = {
        m["MetricName"]: m["Value"] for m in chain.properties(Step.TRAIN)["FinalMetricDataList"]
    }
    assert set(reported) == {d["Name"] for d in definitions}
    manifest = json.loads((chain.model_dir() / "manifest.json").read_text())
    for name, value in manifest["validation_metrics"].items():
        assert reported[f"validation:{name}"] == pytest.approx(value, abs=1e-6)
    assert reported["validation:roc_auc"] > 0.85


def test_the_model_archive_holds_what_serving_and_drift_need(chain: Chain) -> None:
    uri = chain.properties(Step.TRAIN)["ModelArtifacts"]["S3ModelArtifacts"]
    output_path = chain.properties(Step.TRAIN)["OutputDataConfig"]["S3OutputPath"]
    assert uri.startswith(output_path + "/") and uri.endswith("/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(chain.store.read_bytes(uri)), mode="r:gz") as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert members == ["baseline.json", "code/inference.py", "manifest.json", "model.joblib"]


def test_every_job_gets_the_code_commit_and_the_model_manifest_names_it(chain: Chain) -> None:
    jobs = [
        s for s in walk_steps(chain.definition["Steps"]) if s["Type"] in {"Processing", "Training"}
    ]
    commits = {s["Arguments"].get("Environment", {}).get(GIT_SHA_ENV) for s in jobs}
    assert len(jobs) == 4 and len(commits) == 1
    (commit,) = commits
    assert commit and re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)
    manifest = json.loads((chain.model_dir() / "manifest.json").read_text())
    assert manifest["code"]["git_sha"] == commit
    registered = chain.run.registrations[Step.REGISTER]
    assert registered["CustomerMetadataProperties"]["code_commit"] == commit


# --- Evaluate and the condition -----------------------------------------------------------


def test_evaluate_scores_the_archive_and_the_condition_reads_its_report(chain: Chain) -> None:
    report_uri = f"{chain.output_uri(Step.EVALUATE, 'evaluation')}/evaluation.json"
    report = json.loads(chain.store.read_bytes(report_uri))
    metrics = report["binary_classification_metrics"]
    assert sum(metrics["confusion_matrix"][a][p] for a in "01" for p in "01") == 750
    # The condition's JsonGet, resolved against the file Evaluate wrote, is a number.
    condition = step(chain.definition, Step.CHECK)["Arguments"]["Conditions"][0]
    context = replace(chain.run.context, current=Step.CHECK)
    value = context.resolve(condition["LeftValue"])
    assert isinstance(value, float)
    assert value == walk(report, condition["LeftValue"]["Std:JsonGet"]["Path"], "report")
    threshold = context.resolve(condition["RightValue"])
    assert chain.run.outcomes[Step.CHECK] is (value >= threshold) is True
    # So the model was registered, with the archive and the report the steps produced.
    registered = chain.run.registrations[Step.REGISTER]
    container = registered["InferenceSpecification"]["Containers"][0]
    assert (
        container["ModelDataUrl"]
        == chain.properties(Step.TRAIN)["ModelArtifacts"]["S3ModelArtifacts"]
    )
    assert registered["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == report_uri


def test_the_bias_gate_reads_what_evaluate_wrote_and_registration_attaches_its_reports(
    chain: Chain,
) -> None:
    evaluation = chain.output_uri(Step.EVALUATE, "evaluation")
    gates = json.loads(chain.store.read_bytes(f"{evaluation}/gates.json"))
    # Staging's limit (AD 0.1) holds for the trained model, so the gate let it through.
    assert gates["bias_violations"] == 0
    assert chain.run.outcomes[Step.CHECK_BIAS] is True
    registered = chain.run.registrations[Step.REGISTER]
    metrics = registered["ModelMetrics"]
    for section, report, name in (
        ("Bias", "Report", "bias/analysis.json"),
        ("Explainability", "Report", "explainability/analysis.json"),
    ):
        uri = metrics[section][report]["S3Uri"]
        assert uri == f"{evaluation}/{name}"
        assert json.loads(chain.store.read_bytes(uri))  # Clarify's analysis, as written
    card = registered["CustomerMetadataProperties"]["mlops:model-card"]
    assert card == f"{evaluation}/model_card.json"


def test_the_published_card_names_the_registered_version_and_sagemaker_keeps_it(
    chain: Chain,
) -> None:
    arguments = chain.run.context.properties[Step.PUBLISH_CARD]["AppSpecification"][
        "ContainerArguments"
    ]
    package = chain.run.context.properties[Step.REGISTER]["ModelPackageArn"]
    assert _argument(arguments, "--model-package-arn") == package
    assert package in json.dumps(chain.published_card)
    assert chain.model_card["ModelCardName"] == _argument(arguments, "--card-name")
    assert chain.model_card["ModelCardName"].startswith("churn-staging-models-")
    assert package in chain.model_card["Content"]


# --- the Tune path (staging as configured) ---------------------------------------------------


@dataclass(frozen=True)
class TunedRun:
    definition: dict[str, Any]
    store: ObjectStore
    run: PipelineRun

    def properties(self, name: str) -> dict[str, Any]:
        return self.run.context.properties[name]


def _without(steps: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The steps with ``name`` removed, at any depth (it may nest in a condition's branch)."""
    kept = []
    for item in steps:
        if item["Name"] == name:
            continue
        if item["Type"] == "Condition":
            arguments = item["Arguments"]
            branches = {k: _without(arguments[k], name) for k in ("IfSteps", "ElseSteps")}
            item = {**item, "Arguments": {**arguments, **branches}}
        kept.append(item)
    return kept


@pytest.fixture(scope="module")
def tuned(chain: Chain, plan_of: Any, tmp_path_factory: pytest.TempPathFactory) -> TunedRun:
    """Staging's definition as configured: Tune, Evaluate and the gates up to RegisterModel.

    ValidateAndSplit is the chain's step unchanged, so its run is reused (as a selective
    execution reuses its source execution's steps): one training job and one Evaluate more.
    PublishModelCard is left out; it reads only the registration, covered by the chain."""
    stack: PlannedStack = plan_of(STACK)
    document = definition(stack, "training")
    assert [s["Name"] for s in document["Steps"]] == [
        Step.PROCESS, Step.TUNE, Step.EVALUATE, Step.CHECK,
    ]  # fmt: skip
    assert step(document, Step.PROCESS) == step(chain.definition, Step.PROCESS)
    root = tmp_path_factory.mktemp("tuning-pipeline")
    store = uploaded(stack, root / "s3")
    split = chain.properties(Step.PROCESS)
    for output in split["ProcessingOutputConfig"]["Outputs"]:
        for uri, path in chain.store.objects(output["S3Output"]["S3Uri"]):
            store.put(uri, path)
    pipeline = LocalPipeline(
        {**document, "Steps": _without(document["Steps"], Step.PUBLISH_CARD)}, store,
        root / "jobs", job_environment=MACHINE, execution_id="local0tuned",
        reused={Step.PROCESS: split},
    )  # fmt: skip
    return TunedRun(document, store, pipeline.run())


def _tuning_definition(tuned: TunedRun) -> dict[str, Any]:
    arguments: dict[str, Any] = step(tuned.definition, Step.TUNE)["Arguments"]
    return arguments


def test_the_tuning_jobs_training_job_runs_in_the_image_network_isolated(tuned: TunedRun) -> None:
    training = _tuning_definition(tuned)["TrainingJobDefinition"]
    assert training["EnableNetworkIsolation"] is True
    job = tuned.run.jobs[Step.TUNE]
    assert job.isolated
    assert Step.PROCESS not in tuned.run.jobs  # reused, not run again
    # Through the image's toolkit, its requirements installed from the bundle offline...
    assert "Looking in links: /opt/ml/code/wheels" in job.log
    assert "pandera-0.35.0.dist-info" in job.installed()
    # ...with the static hyperparameters and each range's lower end (staging's ranges).
    command = re.search(r"^\S+/python3?(?:\.12)? train\.py (.+)$", job.log, re.MULTILINE)
    assert command, job.log[-2000:]
    tokens = command.group(1).split()
    arguments = dict(zip(tokens[::2], tokens[1::2], strict=True))
    assert {k: v for k, v in arguments.items() if not k.startswith("--sagemaker_")} == {
        "--class_weight": "balanced", "--l2_regularization": "0.0", "--learning_rate": "0.02",
        "--max_iter": "200", "--max_leaf_nodes": "8", "--min_samples_leaf": "5", "--seed": "42",
    }  # fmt: skip
    manifest = json.loads((job.fs.ml / "model" / "manifest.json").read_text())
    assert manifest["hyperparameters"]["learning_rate"] == 0.02
    assert manifest["hyperparameters"]["max_leaf_nodes"] == 8
    # The tuning job's name (at most 32 characters) prefixes its training job's.
    tuning_job = tuned.properties(Step.TUNE)["HyperParameterTuningJobName"]
    assert len(tuning_job) <= 32
    assert re.fullmatch(re.escape(tuning_job) + r"-001-[0-9a-f]{8}", job.job_name)


def test_the_objective_is_parsed_from_the_jobs_output_by_the_definitions_regex(
    tuned: TunedRun,
) -> None:
    config = _tuning_definition(tuned)
    objective = config["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"MetricName": "validation:roc_auc", "Type": "Maximize"}
    definitions = config["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    (regex,) = [d["Regex"] for d in definitions if d["Name"] == objective["MetricName"]]
    job = tuned.run.jobs[Step.TUNE]
    (printed,) = re.findall(regex, job.log)
    best = tuned.properties(Step.TUNE)["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "MetricName": "validation:roc_auc",
        "Value": float(printed),
    }
    # What train.py measured, as its manifest records it: the regex lost nothing but rounding.
    manifest = json.loads((job.fs.ml / "model" / "manifest.json").read_text())
    assert float(printed) == pytest.approx(manifest["validation_metrics"]["roc_auc"], abs=1e-6)


def test_evaluate_and_registration_get_the_model_the_tuning_job_wrote(tuned: TunedRun) -> None:
    job = tuned.run.jobs[Step.TUNE]
    properties = tuned.properties(Step.TUNE)
    assert properties["BestTrainingJob"]["TrainingJobName"] == job.job_name
    assert properties["TrainingJobSummaries"][0]["TrainingJobName"] == job.job_name
    # Where SageMaker puts a training job's model: <S3OutputPath>/<job name>/output/.
    output_path = _tuning_definition(tuned)["TrainingJobDefinition"]["OutputDataConfig"]
    written = f"{output_path['S3OutputPath']}/{job.job_name}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(tuned.store.read_bytes(written)), mode="r:gz") as tar:
        archived = tar.extractfile("manifest.json")
        assert archived is not None
        assert archived.read() == (job.fs.ml / "model" / "manifest.json").read_bytes()
    # get_top_model_s3_uri's Std:Join, resolved, names that object for both consumers.
    inputs = tuned.properties(Step.EVALUATE)["ProcessingInputs"]
    (model,) = [i["S3Input"] for i in inputs if i["InputName"] == "model"]
    assert model["S3Uri"] == written
    registered = tuned.run.registrations[Step.REGISTER]
    assert registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == written
    # Evaluate got those bytes, scored the 750 test rows and wrote its report.
    evaluate = tuned.run.jobs[Step.EVALUATE]
    local = evaluate.fs.opt / PurePosixPath(model["LocalPath"]).relative_to("/opt")
    assert (local / "model.tar.gz").read_bytes() == tuned.store.read_bytes(written)
    outputs = tuned.properties(Step.EVALUATE)["ProcessingOutputConfig"]["Outputs"]
    (evaluation,) = [o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == "evaluation"]
    assert "local0tuned" in evaluation  # this execution's report, not the chain's
    report = json.loads(tuned.store.read_bytes(f"{evaluation}/evaluation.json"))
    matrix = report["binary_classification_metrics"]["confusion_matrix"]
    assert sum(matrix[a][p] for a in "01" for p in "01") == 750
    assert tuned.run.outcomes == {Step.CHECK: True, Step.CHECK_BIAS: True}
    assert registered["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == (
        f"{evaluation}/evaluation.json"
    )


# --- serving the trained model ------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    body: bytes
    content_type: str
    status: int
    reply: bytes
    reply_type: str


def _payloads(rows: pd.DataFrame) -> Iterator[tuple[bytes, str]]:
    for number, start in enumerate(range(0, len(rows), ROWS_PER_REQUEST)):
        part = rows.iloc[start : start + ROWS_PER_REQUEST]
        kind = number % 3
        if kind == 0:
            yield part.to_csv(index=False, header=False).encode(), "text/csv"
        elif kind == 1:
            yield json.dumps({"instances": part.to_numpy().tolist()}).encode(), "application/json"
        else:
            records = {"records": part.to_dict(orient="records")}
            yield json.dumps(records).encode(), "application/json"


@pytest.fixture(scope="module")
def test_split(chain: Chain) -> pd.DataFrame:
    prefix = chain.output_uri(Step.PROCESS, "test")
    frame = pd.read_csv(io.BytesIO(chain.store.read_bytes(f"{prefix}/test.csv")))
    return frame.loc[:, list(ds.FEATURES)].head(SERVED_ROWS)


@pytest.fixture(scope="module")
def served(
    chain: Chain, test_split: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> list[Exchange]:
    """The registered model.tar.gz in the image's worker, with the registered Environment."""
    container = chain.run.registrations[Step.REGISTER]["InferenceSpecification"]["Containers"][0]
    fs = image_filesystem(tmp_path_factory.mktemp("endpoint"))
    archive = chain.store.read_bytes(container["ModelDataUrl"])
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(fs.ml / "model", filter="data")
    exchanges = []
    with (
        serving_container(fs, container["Environment"], port=free_port()) as worker,
        httpx.Client(base_url=worker.url, timeout=30) as client,
    ):
        for body, content_type in _payloads(test_split):
            headers = {"Content-Type": content_type, "Accept": "application/json"}
            reply = client.post("/invocations", content=body, headers=headers)
            exchanges.append(
                Exchange(body, content_type, reply.status_code, reply.content,
                         reply.headers.get("content-type", ""))
            )  # fmt: skip
    return exchanges


def test_the_registered_model_serves_its_predictions_in_the_image_worker(
    chain: Chain, served: list[Exchange], test_split: pd.DataFrame
) -> None:
    assert {e.status for e in served} == {200}, [e.reply[:300] for e in served if e.status != 200]
    assert {e.content_type for e in served} == {"text/csv", "application/json"}
    manifest = json.loads((chain.model_dir() / "manifest.json").read_text())
    answers = [json.loads(e.reply) for e in served]
    assert {a["model_sha256"] for a in answers} == {manifest["model"]["sha256"]}
    served_positive = [p["probabilities"]["yes"] for a in answers for p in a["predictions"]]
    # The same probabilities as the trained model file gives here (Python 3.11).
    model = joblib.load(chain.model_dir() / "model.joblib")
    expected = model.predict_proba(test_split)[:, list(model.classes_).index(1)]
    assert served_positive == pytest.approx(expected.tolist(), abs=1e-6)


# --- the drift pipeline --------------------------------------------------------------------


@dataclass(frozen=True)
class DriftRun:
    run: PipelineRun
    store: ObjectStore
    arguments: dict[str, Any]
    metrics: dict[str, float]
    package_arn: str


def _argument(arguments: list[str], flag: str) -> str:
    return arguments[arguments.index(flag) + 1]


def _bucket(aws: EmbeddedAws, uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    s3 = aws.client("s3")
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        location = {"LocationConstraint": aws.region}
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
    return bucket, key


def _register(aws: EmbeddedAws, chain: Chain) -> str:
    """What RegisterModel asks for, sent to the (moto) registry, with everything it names
    (the archive, the reports) in moto's S3."""
    registered = chain.run.registrations[Step.REGISTER]
    mirror_into(aws)(chain.store)
    sagemaker = aws.client("sagemaker")
    group = registered["ModelPackageGroupName"]
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification=registered["InferenceSpecification"],
        ModelMetrics=registered["ModelMetrics"],
        ModelApprovalStatus=registered["ModelApprovalStatus"],
    )["ModelPackageArn"]
    return arn


def _capture(
    aws: EmbeddedAws,
    prefix: str,
    served: list[Exchange],
    when: datetime,
    event_ids: list[str] | None = None,
) -> None:
    """The worker's exchanges as the endpoint's data capture writes them, in one file."""
    ids = event_ids or [str(uuid.uuid4()) for _ in served]
    lines = [
        json.dumps(capture_record(request_body=e.body, request_content_type=e.content_type,
                                  response_body=e.reply, response_content_type=e.reply_type,
                                  when=when, event_id=event_id))
        for e, event_id in zip(served, ids, strict=True)
    ]  # fmt: skip
    bucket, key = _bucket(aws, prefix)
    key = f"{key.rstrip('/')}/{when:%Y/%m/%d/%H}/{when:%M-%S}-{uuid.uuid4()}.jsonl"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n")


def _published(aws: EmbeddedAws, namespace: str, endpoint: str) -> dict[str, float]:
    """Each metric in the namespace (FeaturePSI per feature), read back from CloudWatch."""
    cloudwatch, now = aws.client("cloudwatch"), datetime.now(UTC)
    found = {}
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dimensions.pop("EndpointName") == endpoint
        label = "/".join([metric["MetricName"], *dimensions.values()])
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1),
            Period=7200, Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
        (found[label],) = (p["Maximum"] for p in points)
    return found


@pytest.fixture(scope="module")
def drift(
    chain: Chain, served: list[Exchange], tmp_path_factory: pytest.TempPathFactory
) -> DriftRun:
    """The drift pipeline's jobs against moto, reading the registry and capture made above:
    the drift job and, beside it, the attribution job."""
    document = definition(chain.stack, "monitoring")
    assert [s["Name"] for s in document["Steps"]] == ["DetectDrift", "DetectAttributionDrift"]
    arguments = step_arguments(document, "DetectDrift")
    region = _argument(arguments, "--region")
    root = tmp_path_factory.mktemp("drift-pipeline")
    with embedded_aws(region) as aws:
        package_arn = _register(aws, chain)
        _capture(aws, _argument(arguments, "--capture"), served, datetime.now(UTC) - MINUTES_AGO)
        store = uploaded(chain.stack, root / "s3")
        run = LocalPipeline(document, store, root / "jobs", job_environment=aws_machine(aws)).run()
        metrics = _published(
            aws, _argument(arguments, "--namespace"), _argument(arguments, "--endpoint-name")
        )
    return DriftRun(run, store, run.context.properties["DetectDrift"], metrics, package_arn)


def test_the_attribution_job_ranks_the_served_window_against_the_registered_explanation(
    drift: DriftRun,
) -> None:
    arguments = drift.run.context.properties["DetectAttributionDrift"]
    assert _argument(arguments["AppSpecification"]["ContainerArguments"], "--baseline") == (
        drift.package_arn
    )
    # The served window's ranking, against the explanation registration attached: the
    # same model on the test split's rows, so the ranking agrees with itself closely.
    assert 0 < drift.metrics["AttributionNDCG"] <= 1
    assert {f"FeatureAttribution/{name}" for name in ds.FEATURES} <= set(drift.metrics)
    assert drift.metrics["ExplainedRecords"] > 0


def test_the_drift_job_reads_the_served_capture_against_the_registered_baseline(
    drift: DriftRun, served: list[Exchange]
) -> None:
    arguments = drift.arguments["AppSpecification"]["ContainerArguments"]
    # moto numbers the package exactly as the stack's drift definition expects.
    assert _argument(arguments, "--baseline") == drift.package_arn
    assert _argument(arguments, "--window-hours") == "24"
    output = drift.arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    report = json.loads(drift.store.read_bytes(f"{output}/drift.json"))
    assert drift.store.read_bytes(f"{output}/drift.html").startswith(b"<!doctype html>")
    assert report["status"] == "ok"
    assert report["baseline"] == drift.package_arn
    assert report["records"]["used"] == len(served)
    assert report["records"]["rows"] == SERVED_ROWS
    assert report["records"]["malformed"] == 0
    assert set(report["features"]) == set(ds.FEATURES)


def test_the_drift_job_publishes_its_findings_to_cloudwatch(drift: DriftRun) -> None:
    assert drift.metrics["CaptureRecords"] == SERVED_ROWS / ROWS_PER_REQUEST
    assert drift.metrics["MalformedRecords"] == 0
    assert {f"FeaturePSI/{name}" for name in ds.FEATURES} <= set(drift.metrics)
    # Unchanged traffic: state's PSI on 300 rows (0.21) is sampling noise, which the
    # corrected chi-square test sees, so no feature is named and the score stays 0.
    assert max(v for k, v in drift.metrics.items() if k.startswith("FeaturePSI/")) > 0
    assert drift.metrics["DriftScore"] == 0
    assert drift.metrics["DriftedFeatures"] == 0


# --- the quality pipeline --------------------------------------------------------------------


@dataclass(frozen=True)
class QualityRun:
    run: PipelineRun
    store: ObjectStore
    arguments: dict[str, Any]
    metrics: dict[str, float]


@pytest.fixture(scope="module")
def quality(
    chain: Chain, served: list[Exchange], tmp_path_factory: pytest.TempPathFactory
) -> QualityRun:
    """The quality pipeline's job against moto: the served exchanges captured, then each
    request's labels (the test split's own) uploaded in Model Monitor's ground-truth format."""
    from monitoring.ground_truth import hour_folder, to_line

    document = definition(chain.stack, "monitoring-quality")
    assert [s["Name"] for s in document["Steps"]] == ["MeasureQuality"]
    arguments = step_arguments(document, "MeasureQuality")
    prefix = chain.output_uri(Step.PROCESS, "test")
    truth = pd.read_csv(io.BytesIO(chain.store.read_bytes(f"{prefix}/test.csv")))[ds.TARGET]
    labels = [int(v == ds.POSITIVE_LABEL) for v in truth.head(SERVED_ROWS)]
    ids = [f"request-{n}" for n in range(len(served))]
    when = datetime.now(UTC) - MINUTES_AGO
    root = tmp_path_factory.mktemp("quality-pipeline")
    with embedded_aws(_argument(arguments, "--region")) as aws:
        _register(aws, chain)
        _capture(aws, _argument(arguments, "--capture"), served, when, ids)
        lines = [
            to_line(event_id, labels[n * ROWS_PER_REQUEST : (n + 1) * ROWS_PER_REQUEST])
            for n, event_id in enumerate(ids)
        ]
        bucket, key = _bucket(aws, hour_folder(_argument(arguments, "--ground-truth"), when))
        body = ("\n".join(lines) + "\n").encode()
        aws.client("s3").put_object(Bucket=bucket, Key=f"{key}/labels.jsonl", Body=body)
        store = uploaded(chain.stack, root / "s3")
        # Labels a scheduled run would wait a day for are here already: no delay.
        run = LocalPipeline(
            document, store, root / "jobs", job_environment=aws_machine(aws),
            parameters={"LabelDelayHours": 0},
        ).run()  # fmt: skip
        metrics = _published(
            aws, _argument(arguments, "--namespace"), _argument(arguments, "--endpoint-name")
        )
    return QualityRun(run, store, run.context.properties["MeasureQuality"], metrics)


def test_the_quality_job_joins_every_served_request_with_its_labels(
    quality: QualityRun, served: list[Exchange]
) -> None:
    assert quality.metrics["LabelledRecords"] == len(served)
    for name in ("UnlabelledRecords", "OrphanLabels", "DuplicateLabels", "MalformedLabels"):
        assert quality.metrics[name] == 0, name
    # The model on its own test rows: no significant drop from its evaluation.
    assert quality.metrics["QualityViolations"] == 0
    assert "BiasViolations" in quality.metrics
    output = quality.arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert json.loads(quality.store.read_bytes(f"{output}/constraint_violations.json"))


# --- what the runner refuses ----------------------------------------------------------------


def test_a_reference_to_a_step_the_definition_lacks_is_refused(
    chain: Chain, tmp_path: Path
) -> None:
    document = copy.deepcopy(chain.definition)
    channel = step(document, Step.TRAIN)["Arguments"]["InputDataConfig"][1]
    channel["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    with pytest.raises(DefinitionError, match=r"Train: refers to step\(s\) Preprocess, which the"):
        LocalPipeline(document, chain.store, tmp_path).run()
    assert not list(tmp_path.iterdir())  # refused before any job started


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "Steps.ValidateAndSplit.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri",
            "no item named 'features'",
        ),
        ("Steps.MetricBelowThreshold.ErrorMessage", "which has not run before it"),
        ("Steps.Train.ModelArtifacts.S3ModelArtefacts", "no 'S3ModelArtefacts'"),
        ("Parameters.InputDataURI", "is not a pipeline parameter"),
    ],
)
def test_a_reference_to_an_output_no_earlier_step_produced_is_refused(
    chain: Chain, reference: str, message: str
) -> None:
    context = replace(chain.run.context, current="Evaluate")
    with pytest.raises(DefinitionError, match=re.escape(message)):
        context.resolve({"Get": reference})


def test_steps_that_depend_on_each_other_are_refused() -> None:
    steps = [
        {"Name": "A", "Type": "Processing", "Arguments": {"X": {"Get": "Steps.B.Y"}}},
        {"Name": "B", "Type": "Processing", "Arguments": {"X": {"Get": "Steps.A.Y"}}},
    ]
    with pytest.raises(DefinitionError, match="steps A, B depend on each other in a cycle"):
        ordered_steps(steps)


def test_an_input_prefix_with_no_objects_fails_the_step_before_it_starts(
    chain: Chain, tmp_path: Path
) -> None:
    empty = "s3://nowhere-bucket/raw/none/"
    pipeline = LocalPipeline(
        chain.definition, chain.store, tmp_path, parameters={"InputDataUri": empty}
    )
    with pytest.raises(
        StepFailedError, match=f"ValidateAndSplit: input raw: no S3 objects under {empty}"
    ):
        pipeline.run()
    assert not list(tmp_path.glob("*/job.log"))


def test_data_that_breaks_the_contract_stops_the_pipeline_at_validate_and_split(
    chain: Chain, tmp_path: Path
) -> None:
    csv = next(r for r in chain.stack.all(UPLOAD) if r.inputs["key"].endswith(".csv"))
    raw = chain.store.read_bytes(f"s3://{csv.inputs['bucket']}/{csv.inputs['key']}")
    bad = pd.read_csv(io.BytesIO(raw))
    bad.loc[:9, "total_day_minutes"] = -1.0
    uri = "s3://bad-data-bucket/raw/broken/churn.csv"
    path = tmp_path / "churn.csv"
    bad.to_csv(path, index=False)
    chain.store.put(uri, path)
    pipeline = LocalPipeline(
        chain.definition, chain.store, tmp_path / "jobs", job_environment=MACHINE,
        parameters={"InputDataUri": uri.rsplit("/", 1)[0] + "/"},
    )  # fmt: skip
    with pytest.raises(StepFailedError, match="ValidateAndSplit exited with 2") as failed:
        pipeline.run()
    assert "total_day_minutes: in_range(0, 720) failed for 10 value(s)" in str(failed.value)
    assert not (tmp_path / "jobs" / Step.TRAIN).exists()


def _connect_step(name: str, isolated: bool, port: int) -> dict[str, Any]:
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", connect]},
            "NetworkConfig": {"EnableNetworkIsolation": isolated},
            "ProcessingInputs": [],
            "ProcessingOutputConfig": {"Outputs": []},
        },
    }


def test_only_the_steps_that_ask_for_network_isolation_are_cut_off(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        document = {
            "Parameters": [],
            "Steps": [_connect_step("Open", False, port), _connect_step("Isolated", True, port)],
        }
        with pytest.raises(StepFailedError, match="Isolated exited with 1") as failed:
            LocalPipeline(document, ObjectStore(tmp_path / "s3"), tmp_path / "jobs").run()
    assert "Network is unreachable" in str(failed.value)
    assert (tmp_path / "jobs" / "Open" / "job.log").read_text() == ""


def test_a_metric_below_the_threshold_ends_in_the_definitions_fail_step(
    chain: Chain, tmp_path: Path
) -> None:
    """The definition's own condition and Fail step, after an Evaluate that scores 0.5."""
    declared = step(chain.definition, Step.EVALUATE)
    (output,) = declared["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    write = _writes(
        output["S3Output"]["LocalPath"],
        {"evaluation.json": {"binary_classification_metrics": {"auc": {"value": 0.5}}}},
    )
    evaluate = {
        **declared,
        "Arguments": {
            "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", write]},
            "ProcessingInputs": [],
            "ProcessingOutputConfig": {"Outputs": [output]},
        },
    }
    check = copy.deepcopy(step(chain.definition, Step.CHECK))
    check["Arguments"]["IfSteps"] = []  # RegisterModel reads Train, which is not run here
    document = {"Parameters": chain.definition["Parameters"], "Steps": [evaluate, check]}
    with pytest.raises(PipelineFailedError) as failed:
        LocalPipeline(document, ObjectStore(tmp_path / "s3"), tmp_path / "jobs").run()
    assert str(failed.value) == (
        "MetricBelowThreshold: roc_auc on the test split is 0.5 - below the threshold 0.8 "
        "- so the model was not registered."
    )


def _writes(folder: str, files: dict[str, Any]) -> str:
    """A one-line Python program that writes ``files`` (name -> JSON) into ``folder``."""
    return "import json; " + "; ".join(
        f"json.dump({content!r}, open({f'{folder}/{name}'!r}, 'w'))"
        for name, content in files.items()
    )


def test_a_model_over_a_bias_limit_ends_in_its_own_fail_step(chain: Chain, tmp_path: Path) -> None:
    """A good metric, two bias violations: the bias gate refuses, with its own message."""
    declared = step(chain.definition, Step.EVALUATE)
    (output,) = declared["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    write = _writes(
        output["S3Output"]["LocalPath"],
        {
            "evaluation.json": {"binary_classification_metrics": {"auc": {"value": 0.95}}},
            "gates.json": {"bias_violations": 2},
        },
    )
    evaluate = {
        **declared,
        "Arguments": {
            "AppSpecification": {"ContainerEntrypoint": ["python3", "-c", write]},
            "ProcessingInputs": [],
            "ProcessingOutputConfig": {"Outputs": [output]},
        },
    }
    check = copy.deepcopy(step(chain.definition, Step.CHECK))
    (bias,) = check["Arguments"]["IfSteps"]
    bias["Arguments"]["IfSteps"] = []  # RegisterModel reads Train, which is not run here
    document = {"Parameters": chain.definition["Parameters"], "Steps": [evaluate, check]}
    with pytest.raises(PipelineFailedError) as failed:
        LocalPipeline(document, ObjectStore(tmp_path / "s3"), tmp_path / "jobs").run()
    message = str(failed.value)
    assert message.startswith(
        "BiasLimitExceeded: bias on the test split exceeds 2 configured limit(s) - so the "
        "model was not registered; see s3://"
    )
    assert message.endswith("/bias/analysis.json")


def test_a_parameter_the_definition_does_not_declare_is_refused(
    chain: Chain, tmp_path: Path
) -> None:
    pipeline = LocalPipeline(chain.definition, chain.store, tmp_path, parameters={"Threshold": 0.9})
    with pytest.raises(DefinitionError, match="no such pipeline parameter"):
        pipeline.run()
