"""Run a SageMaker pipeline definition's steps on this machine, inside the image's toolkits.

Each Processing and Training step (and one training job of a Tuning step, named and placed
as a tuning job's training jobs are) runs as SageMaker runs it, in a fresh ``/opt`` of its
own (tests/sagemaker_image.py): inputs copied from a local stand-in for S3 to their local
paths, ``/opt/ml/input/config/*.json`` written for training, the definition's command or
the image's ``train`` entry, the step's Environment, the StoppingCondition as a timeout,
and, where the definition asks for network isolation, a network namespace with nothing in
it. A step's VpcConfig is not reproduced (there is no VPC here): a job has this machine's
network or none, as its isolation flag says, with or without one. Outputs go back to the
stand-in under the definition's S3 URIs, so the next step's ``Get`` expressions resolve
(tests/pipeline_expressions.py). Condition steps pick their branch (at any depth),
RegisterModel steps record the request they would send (and name the version it would
create), Fail steps raise. Steps given as ``reused`` are not run: their properties come
from an earlier execution, as SageMaker's selective execution takes unselected steps'
outputs from its source execution.

Nothing here knows a step's name: everything comes from the definition.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_expressions import Context, DefinitionError, Execution, execution_for, step_references
from sagemaker_image import IMAGE_BIN, ImageFilesystem, image_filesystem

# The image's own ENV (aws/deep-learning-containers docker/sklearn/1.9-0/Dockerfile) that a
# job can notice; the training module is image_entry's stand-in for the image's package.
IMAGE_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "LC_ALL": "C.UTF-8",
    "SM_INPUT": "/opt/ml/input",
    "SM_INPUT_TRAINING_CONFIG_FILE": "/opt/ml/input/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG_FILE": "/opt/ml/input/config/inputdataconfig.json",
    "SM_CHECKPOINT_CONFIG_FILE": "/opt/ml/input/config/checkpointconfig.json",
    "SM_MODEL_DIR": "/opt/ml/model",
    "SAGEMAKER_TRAINING_MODULE": "image_entry:training_main",
}
HOST = "algo-1"
OPT = PurePosixPath("/opt")
# moto's (and the plan's) pretend account.
LOCAL_ACCOUNT = "123456789012"
# CreateHyperParameterTuningJob: "The name must have 1 to 32 characters."
TUNING_JOB_NAME_LENGTH = 32


class StepFailedError(Exception):
    """A job exited non-zero, or its inputs could not be provided; SageMaker stops there."""


class PipelineFailedError(Exception):
    """A Fail step ran; the message is its resolved ErrorMessage."""


class ObjectStore:
    """S3 as the pipeline's jobs see it: objects by URI, kept as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, uri: str) -> Path:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise StepFailedError(f"{uri!r} is not an s3://bucket/key URI")
        return self.root / uri[5:]

    def put(self, uri: str, source: Path) -> None:
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def read_bytes(self, uri: str) -> bytes:
        path = self.path(uri)
        if not path.is_file():
            raise StepFailedError(f"no object at {uri}")
        return path.read_bytes()

    def objects(self, prefix: str) -> Iterator[tuple[str, Path]]:
        """(uri, file) for every key starting with the prefix, as S3Prefix matching does."""
        bucket, _, key = prefix[5:].partition("/")
        for path in sorted((self.root / bucket).rglob("*")):
            name = path.relative_to(self.root / bucket).as_posix()
            if path.is_file() and name.startswith(key):
                yield f"s3://{bucket}/{name}", path


def copy_prefix(store: ObjectStore, uri: str, destination: Path) -> int:
    """Objects under an S3Prefix into a local folder: the key after the prefix, or its name."""
    count = 0
    for object_uri, path in store.objects(uri):
        relative = object_uri[len(uri) :].lstrip("/") or PurePosixPath(object_uri).name
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        count += 1
    return count


@dataclass(frozen=True)
class Job:
    """One container run: what it printed, how it ended, and its /opt."""

    step: str
    # The SageMaker job's name (a Tuning step's: its training job's).
    job_name: str
    # Whether the job ran in a network namespace with nothing in it.
    isolated: bool
    exit_code: int
    seconds: float
    log: str
    fs: ImageFilesystem

    def installed(self) -> list[str]:
        """Distributions the job installed into the image (its copy-on-write layer)."""
        return sorted(p.name for p in self._dist_infos() if p.is_dir())

    def removed(self) -> list[str]:
        """Distributions of the image's own that the job uninstalled (overlay whiteouts)."""
        return sorted(p.name for p in self._dist_infos() if p.is_char_device())

    def _dist_infos(self) -> list[Path]:
        site = self.fs.image_changes / "lib" / "python3.12" / "site-packages"
        return list(site.glob("*.dist-info")) if site.is_dir() else []


@dataclass
class PipelineRun:
    context: Context
    jobs: dict[str, Job] = field(default_factory=dict)
    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, bool] = field(default_factory=dict)


@dataclass
class LocalPipeline:
    """``job_environment``: what this machine adds for every job (e.g. an AWS endpoint)."""

    definition: Mapping[str, Any]
    store: ObjectStore
    workspace: Path
    job_environment: Mapping[str, str] = field(default_factory=dict)
    name: str = "local-pipeline"
    execution_id: str = "local0execution"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # Where registered versions' ARNs say they live.
    region: str = "eu-west-1"
    # Jobs with network read and write S3 themselves (boto3), not through their mounts: this
    # copies the stand-in into the S3 they reach (e.g. moto) before such a job starts.
    mirror_s3: Callable[[ObjectStore], None] | None = None
    # Steps not run here: name -> the properties an earlier execution recorded for it.
    reused: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def run(self) -> PipelineRun:
        execution = execution_for(self.definition, self.name, self.execution_id)
        unknown = set(self.parameters) - set(execution.parameters)
        if unknown:
            raise DefinitionError(f"no such pipeline parameter(s): {', '.join(sorted(unknown))}")
        execution = Execution(
            execution.pipeline_name,
            execution.execution_id,
            {**execution.parameters, **self.parameters},
        )
        run = PipelineRun(Context(execution, lambda uri: json.loads(self.store.read_bytes(uri))))
        for step in ordered_steps(self.definition["Steps"]):
            self._step(run, step)
        return run

    def _step(self, run: PipelineRun, step: Mapping[str, Any]) -> None:
        name, kind = step["Name"], step["Type"]
        run.context.current = name
        if kind == "Condition":
            # Only the conditions resolve now; each branch's steps resolve when they run.
            conditions = run.context.resolve(step["Arguments"]["Conditions"])
            outcome = all(_holds(c, name) for c in conditions)
            run.outcomes[name] = outcome
            run.context.properties[name] = {"Outcome": outcome}
            for nested in step["Arguments"]["IfSteps" if outcome else "ElseSteps"]:
                self._step(run, nested)
            return
        arguments = run.context.resolve(step.get("Arguments", {}))
        if name in self.reused:
            properties = dict(self.reused[name])
        elif kind == "Processing":
            properties = self._processing(run, name, arguments)
        elif kind == "Training":
            properties = self._training(run, name, arguments)
        elif kind == "Tuning":
            properties = self._tuning(run, name, arguments)
        elif kind == "RegisterModel":
            run.registrations[name] = arguments
            # The version CreateModelPackage would return: the first of its group here.
            group = str(arguments["ModelPackageGroupName"]).lower()
            arn = f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:model-package/{group}/1"
            properties = {**arguments, "ModelPackageArn": arn}
        elif kind == "Fail":
            raise PipelineFailedError(f"{name}: {arguments.get('ErrorMessage', '')}")
        else:
            raise DefinitionError(f"{name}: the local runner does not run {kind} steps")
        run.context.properties[name] = properties
        run.context.property_files[name] = {
            f["PropertyFileName"]: f for f in step.get("PropertyFiles", [])
        }

    def _processing(self, run: PipelineRun, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if self.mirror_s3 is not None and not _isolated(arguments):
            self.mirror_s3(self.store)
        fs = image_filesystem(self.workspace / name)
        for item in arguments.get("ProcessingInputs", []):
            source = item["S3Input"]
            _require(
                source, name, S3DataType="S3Prefix", S3InputMode="File", S3CompressionType="None"
            )
            self._download(name, item["InputName"], source["S3Uri"], fs, source["LocalPath"])
        # A job may declare no outputs (it writes through S3 itself).
        declared = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        outputs = [o["S3Output"] for o in declared]
        for output in outputs:
            _host(fs, output["LocalPath"]).mkdir(parents=True, exist_ok=True)
        job_name = self._job_name(name)
        config = fs.ml / "config"
        config.mkdir(parents=True, exist_ok=True)
        _write_json(
            config / "processingjobconfig.json", {**arguments, "ProcessingJobName": job_name}
        )
        _write_json(config / "resourceconfig.json", {"current_host": HOST, "hosts": [HOST]})
        app = arguments["AppSpecification"]
        argv = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        self._container(run, name, job_name, fs, argv, arguments, {})
        for output in outputs:
            local = _host(fs, output["LocalPath"])
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                relative = path.relative_to(local).as_posix()
                self.store.put(f"{output['S3Uri'].rstrip('/')}/{relative}", path)
        return {**arguments, "ProcessingJobName": job_name, "ProcessingJobStatus": "Completed"}

    def _job_name(self, step: str) -> str:
        return f"pipelines-{self.execution_id}-{step}"

    def _training(
        self, run: PipelineRun, name: str, arguments: dict[str, Any], job_name: str = ""
    ) -> dict[str, Any]:
        fs = image_filesystem(self.workspace / name)
        config = fs.ml / "input" / "config"
        config.mkdir(parents=True)
        # SageMaker hands every hyperparameter to the container as a string.
        hyperparameters = {k: _string(v) for k, v in arguments.get("HyperParameters", {}).items()}
        _write_json(config / "hyperparameters.json", hyperparameters)
        channels = {}
        for channel in arguments["InputDataConfig"]:
            source = channel["DataSource"]["S3DataSource"]
            _require(source, name, S3DataType="S3Prefix")
            local = f"/opt/ml/input/data/{channel['ChannelName']}"
            self._download(name, channel["ChannelName"], source["S3Uri"], fs, local)
            channels[channel["ChannelName"]] = {
                "TrainingInputMode": channel.get("InputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        _write_json(config / "inputdataconfig.json", channels)
        instance_type = arguments["ResourceConfig"]["InstanceType"]
        group = {"instance_group_name": "homogeneousCluster", "instance_type": instance_type}
        _write_json(
            config / "resourceconfig.json",
            {
                "current_host": HOST,
                "current_instance_type": instance_type,
                "current_group_name": group["instance_group_name"],
                "hosts": [HOST],
                "instance_groups": [{**group, "hosts": [HOST]}],
                "network_interface_name": "eth0",
            },
        )
        for folder in ("model", "output/data", "code"):
            (fs.ml / folder).mkdir(parents=True, exist_ok=True)
        job_name = job_name or self._job_name(name)
        extra = {"TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": f"local:{job_name}"}
        # The image's ENTRYPOINT-less `docker run IMAGE train`: the toolkit's CLI on PATH.
        job = self._container(run, name, job_name, fs, [str(IMAGE_BIN / "train")], arguments, extra)
        # SageMaker's layout for every training job, a tuning job's too: the job's name under
        # OutputDataConfig.S3OutputPath (the SDK's TuningStep.get_top_model_s3_uri rebuilds
        # the best one's model URI from exactly that).
        output = f"{arguments['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job_name}/output"
        for archive, folder in (("model.tar.gz", "model"), ("output.tar.gz", "output/data")):
            packed = fs.opt.with_name(archive)
            _tar_folder(fs.ml / folder, packed)
            self.store.put(f"{output}/{archive}", packed)
        metrics = final_metrics(arguments["AlgorithmSpecification"], job.log)
        return {
            **arguments,
            "TrainingJobName": job_name,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/model.tar.gz"},
            "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()],
        }

    def _tuning(self, run: PipelineRun, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """One training job of the search, as the tuning job would start it: the static
        hyperparameters plus each range's MinValue (the SDK's starting point too).

        The tuning job's name is the prefix of its training jobs' names (CreateHyperParameter
        TuningJob's HyperParameterTuningJobName), which SageMaker numbers and suffixes:
        ``<tuning job>-001-<8 hex>``."""
        job = dict(arguments["TrainingJobDefinition"])
        ranges = arguments["HyperParameterTuningJobConfig"]["ParameterRanges"]
        tuned = {r["Name"]: r["MinValue"] for kind in ranges.values() for r in kind}
        job["HyperParameters"] = {**job.pop("StaticHyperParameters", {}), **tuned}
        tuning_job = self._job_name(name)[:TUNING_JOB_NAME_LENGTH]
        suffix = hashlib.sha256(f"{tuning_job}-001".encode()).hexdigest()[:8]
        trained = self._training(run, name, job, f"{tuning_job}-001-{suffix}")
        objective = arguments["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
        if objective["MetricName"] not in metrics:
            raise StepFailedError(f"{name}: the job printed no {objective['MetricName']}")
        summary = {
            "TrainingJobName": trained["TrainingJobName"],
            "TuningJobName": tuning_job,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": tuned,
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "MetricName": objective["MetricName"],
                "Value": metrics[objective["MetricName"]],
            },
        }
        return {
            "HyperParameterTuningJobName": tuning_job,
            "HyperParameterTuningJobStatus": "Completed",
            "BestTrainingJob": summary,
            "TrainingJobSummaries": [summary],
        }

    def _download(
        self, step: str, input_name: str, uri: Any, fs: ImageFilesystem, local: str
    ) -> None:
        if not isinstance(uri, str) or copy_prefix(self.store, uri, _host(fs, local)) == 0:
            raise StepFailedError(f"{step}: input {input_name}: no S3 objects under {uri}")

    def _container(
        self,
        run: PipelineRun,
        name: str,
        job_name: str,
        fs: ImageFilesystem,
        argv: list[str],
        arguments: Mapping[str, Any],
        extra: Mapping[str, str],
    ) -> Job:
        if not all(isinstance(a, str) for a in argv):
            raise DefinitionError(f"{name}: the container command did not resolve to strings")
        isolated = _isolated(arguments)
        environment = fs.environment(
            {**IMAGE_ENV, **extra, **arguments.get("Environment", {}), **self.job_environment}
        )
        timeout = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 3600)
        command = fs.command(argv, writable_image=True, hosts=(HOST,), network=not isolated)
        log_path = fs.opt.with_name("job.log")
        began = time.perf_counter()
        exit_code = _run(command, environment, log_path, timeout)
        log = log_path.read_text(errors="replace")
        job = Job(name, job_name, isolated, exit_code, time.perf_counter() - began, log, fs)
        run.jobs[name] = job
        if exit_code != 0:
            failure = fs.ml / "output" / "failure"
            reason = failure.read_text() if failure.is_file() else log[-3000:]
            raise StepFailedError(f"{name} exited with {exit_code}:\n{reason}")
        return job


def _nested(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The steps in a condition's branches, at any depth (a condition may hold another)."""
    branches = step.get("Arguments", {}) if step["Type"] == "Condition" else {}
    found: list[Mapping[str, Any]] = []
    for nested in [*branches.get("IfSteps", []), *branches.get("ElseSteps", [])]:
        found += [nested, *_nested(nested)]
    return found


def _isolated(arguments: Mapping[str, Any]) -> bool:
    network = arguments.get("NetworkConfig", {})
    return bool(arguments.get("EnableNetworkIsolation") or network.get("EnableNetworkIsolation"))


def ordered_steps(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Top-level steps in dependency order (as listed where free), as SageMaker schedules."""
    owner = {s["Name"]: s["Name"] for s in steps}
    for step in steps:
        for nested in _nested(step):
            owner[nested["Name"]] = step["Name"]
    needs: dict[str, set[str]] = {}
    for step in steps:
        references = step_references(step)
        missing = sorted(r for r in references if r not in owner)
        if missing:
            raise DefinitionError(
                f"{step['Name']}: refers to step(s) {', '.join(missing)}, which the definition "
                "does not have; no earlier step produced them"
            )
        needs[step["Name"]] = {owner[r] for r in references} - {step["Name"]}
    ordered: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
        if not ready:
            stuck = sorted(set(needs) - done)
            raise DefinitionError(f"steps {', '.join(stuck)} depend on each other in a cycle")
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


def final_metrics(algorithm: Mapping[str, Any], log: str) -> dict[str, float]:
    """Each MetricDefinition's last match in the job's log, as SageMaker reports it."""
    found = {}
    for definition in algorithm.get("MetricDefinitions", []):
        values = re.findall(definition["Regex"], log)
        if values:
            found[definition["Name"]] = float(values[-1])
    return found


_COMPARISONS = {
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
    "LessThan": lambda a, b: a < b,
    "Equals": lambda a, b: a == b,
}


def _holds(condition: Mapping[str, Any], step: str) -> bool:
    compare = _COMPARISONS.get(condition["Type"])
    if compare is None:
        raise DefinitionError(f"{step}: the local runner has no {condition['Type']} condition")
    left, right = condition["LeftValue"], condition["RightValue"]
    if isinstance(left, str) != isinstance(right, str):
        raise DefinitionError(f"{step}: cannot compare {left!r} with {right!r}")
    return bool(compare(left, right))


def _require(source: Mapping[str, Any], step: str, **expected: str) -> None:
    for key, value in expected.items():
        if source.get(key, value) != value:
            raise DefinitionError(f"{step}: {key} {source[key]} is not supported locally")


def _host(fs: ImageFilesystem, container_path: str) -> Path:
    path = PurePosixPath(container_path)
    if not path.is_relative_to(OPT):
        raise DefinitionError(f"{container_path} is outside /opt, which the job cannot write")
    return fs.opt / path.relative_to(OPT)


def _string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2))


def _tar_folder(folder: Path, archive: Path) -> None:
    # SageMaker packs the folder's contents, not the folder, into the archive's root.
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)


def _run(command: list[str], environment: dict[str, str], log: Path, timeout: float) -> int:
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, env=environment, cwd="/", stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise StepFailedError(f"stopped after MaxRuntimeInSeconds={timeout}") from None
