"""The attribution-drift job on real capture records: quiet on unchanged traffic, loud when
what drives the model changes, Model Monitor's files, CloudWatch, and clear refusals."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from test_drift import END, ENDPOINT, record, requests, write_capture
from typer.testing import CliRunner

from inference.packaging import build_model_archive
from mlops.cli import app
from monitoring import attribution
from monitoring.capture import Row
from training import dataset as ds
from training import explain, manifest
from training.features import Hyperparameters
from training.train import TrainingPaths, train

REGION = "eu-west-1"
BUCKET = "churn-prod-capture"
NAMESPACE = "MLOpsKit/churn-prod"


@pytest.fixture(scope="module")
def analysis(model_dir: Path, test_rows: pd.DataFrame, tmp_path_factory: Any) -> Path:
    """The model's explainability report, as the evaluation job computes it."""
    model = manifest.load_verified_model(model_dir)
    rows = test_rows.sample(n=explain.DEFAULT_EXPLAIN_ROWS, random_state=0).reset_index(drop=True)
    path: Path = tmp_path_factory.mktemp("evaluation") / "analysis.json"
    path.write_text(json.dumps(explain.explain(model, rows, seed=0)))
    return path


@pytest.fixture(scope="module")
def reliance_shifted(processed: Path, tmp_path_factory: Any) -> Path:
    """A model trained by the kit where day usage says nothing about churn (its values
    shuffled across customers): it leans on other features than the served one does."""
    root = tmp_path_factory.mktemp("shifted")
    shutil.copytree(processed / "validation", root / "validation")
    frame = pd.read_csv(processed / "train" / "train.csv")
    order = np.random.default_rng(0).permutation(len(frame))
    for name in ("total_day_minutes", "total_day_charge"):
        frame[name] = frame[name].to_numpy()[order]
    (root / "train").mkdir()
    frame.to_csv(root / "train" / "train.csv", index=False)
    where = TrainingPaths(root / "model", root / "train", root / "validation", root / "out")
    train(Hyperparameters(max_iter=60), where)
    return where.model_dir


def capture(root: Path, frame: pd.DataFrame, end: datetime = END, hours: int = 3) -> Path:
    """Requests of ``frame`` in SageMaker's capture layout, over the ``hours`` before ``end``."""
    bodies = requests(frame)
    for hour in range(hours):
        when = end - timedelta(hours=hour + 1) + timedelta(minutes=11)
        write_capture(root, [record(b, t, when) for b, t in bodies[hour::hours]], when)
    return root


def run_job(
    tmp_path: Path, captured: Path, model: Path, analysis: Path, *extra: str
) -> tuple[int, Path]:
    out = tmp_path / "report"
    code = attribution.main(
        ["--capture", str(captured), "--baseline", str(model), "--explainability",
         str(analysis), "--output", str(out), "--end", END.isoformat(), *extra],
    )  # fmt: skip
    return code, out


def report_of(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "attribution.json").read_text())
    return loaded


def shifted_inputs(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Half the customers on the international plan (a tenth before), calling abroad 60% more."""
    out = frame.copy()
    out["total_intl_minutes"] = out["total_intl_minutes"] * 1.6
    rng = np.random.default_rng(seed)
    out["international_plan"] = np.where(rng.random(len(out)) < 0.5, "yes", "no")
    return out


def test_unchanged_traffic_raises_no_alarm_and_writes_model_monitors_files(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    window = test_rows.sample(n=200, replace=True, random_state=11).reset_index(drop=True)
    code, out = run_job(tmp_path, capture(tmp_path / "capture", window), model_dir, analysis)
    assert code == attribution.EXIT_OK
    report = report_of(out)
    assert report["status"] == "ok"
    assert report["records"]["rows"] == 200
    assert report["records"]["explained"] == 200
    assert report["ndcg"] >= 0.9
    assert report["drifted"] is False
    baseline = explain.global_attributions(json.loads(analysis.read_text()))
    assert [f["name"] for f in report["features"]] == sorted(baseline, key=lambda n: -baseline[n])
    # Model Monitor's violations file: the version and an empty list when nothing drifted.
    assert json.loads((out / "constraint_violations.json").read_text()) == {
        "version": "1.0",
        "violations": [],
    }
    # Clarify's analysis of the window, one attribution per input column.
    live = json.loads((out / "analysis.json").read_text())
    assert list(explain.global_attributions(live)) == list(ds.FEATURES)
    html = (out / "attribution.html").read_text()
    assert "<svg" in html and "no drift" in html and "<script" not in html


def test_no_false_alarm_on_unchanged_windows_of_200_rows(
    test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    model = manifest.load_verified_model(model_dir)
    baseline = explain.global_attributions(json.loads(analysis.read_text()))
    rng = np.random.default_rng(2026)
    scores = []
    for window in range(3):
        rows = test_rows.iloc[rng.integers(0, len(test_rows), 200)].reset_index(drop=True)
        live = explain.global_attributions(explain.explain(model, rows, seed=window))
        scores.append(explain.ndcg(baseline, live))
    assert min(scores) >= explain.NDCG_THRESHOLD, scores


def test_a_model_leaning_on_other_features_is_flagged(
    tmp_path: Path,
    test_rows: pd.DataFrame,
    analysis: Path,
    reliance_shifted: Path,
) -> None:
    # The endpoint now serves a model that ignores day usage, against the old model's report.
    window = test_rows.sample(n=200, replace=True, random_state=12).reset_index(drop=True)
    captured = capture(tmp_path / "capture", window)
    code, out = run_job(tmp_path, captured, reliance_shifted, analysis)
    assert code == attribution.EXIT_OK  # drift is a finding, not a failure
    report = report_of(out)
    assert report["drifted"] is True
    assert report["ndcg"] < 0.9
    ranks = {f["name"]: f for f in report["features"]}
    assert ranks["total_day_minutes"]["live_rank"] > ranks["total_day_minutes"]["baseline_rank"]
    # AWS, "Model Feature Attribution Drift Violations": one entry per label, no feature.
    violations = json.loads((out / "constraint_violations.json").read_text())
    assert violations["version"] == "1.0"
    [violation] = violations["violations"]
    assert set(violation) == {"label", "metric_name", "constraint_check_type", "description"}
    assert violation["label"] == "label0"
    assert violation["metric_name"] == "shap"
    assert violation["constraint_check_type"] == "feature_attribution_drift_check"
    assert f"{report['ndcg']:.4f}"[:5] in violation["description"]


def test_inputs_shifted_so_other_features_drive_the_model_are_flagged(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    window = test_rows.sample(n=200, replace=True, random_state=13).reset_index(drop=True)
    captured = capture(tmp_path / "capture", shifted_inputs(window))
    code, out = run_job(tmp_path, captured, model_dir, analysis)
    assert code == attribution.EXIT_OK
    report = report_of(out)
    assert report["drifted"] is True, report["ndcg"]
    # The plan now drives the model's output more than anything else does.
    ranks = {f["name"]: f["live_rank"] for f in report["features"]}
    assert ranks["international_plan"] == 1
    assert len(json.loads((out / "constraint_violations.json").read_text())["violations"]) == 1


def test_the_sample_is_uniform_bounded_and_seeded() -> None:
    rows = [Row((str(i),), (float(i),)) for i in range(10)]
    kept: Counter[str] = Counter()
    trials = 3000
    for seed in range(trials):
        sample = attribution.Reservoir(3, seed)
        for row in rows:
            sample.add(row)
        assert len(sample.rows) == 3
        kept.update(r.categorical[0] for r in sample.rows)
    # Each of 10 rows is kept with probability 3/10: 900 of 3000, binomial sd sqrt(3000*.3*.7)
    # = 25; 5 sd either side.
    assert all(abs(kept[str(i)] - 900) < 125 for i in range(10)), kept
    again = attribution.Reservoir(3, 7)
    first = attribution.Reservoir(3, 7)
    for row in rows:
        again.add(row)
        first.add(row)
    assert again.rows == first.rows


def test_only_max_rows_are_explained_and_bad_lines_are_counted(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    root = capture(tmp_path / "capture", test_rows.iloc[:120])
    when = END - timedelta(minutes=20)
    write_capture(root, ["{not json", json.dumps({"captureData": {}})], when, name="bad.jsonl")
    code, out = run_job(tmp_path, root, model_dir, analysis, "--max-rows", "40")
    assert code == attribution.EXIT_OK
    records = report_of(out)["records"]
    assert records["rows"] == 120
    assert records["explained"] == 40
    assert records["malformed_by_reason"] == {"bad_json": 1, "missing_fields": 1}


# --- refusals ----------------------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    test_rows: pd.DataFrame,
    model_dir: Path,
    analysis: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = capture(tmp_path / "capture", test_rows.iloc[:30])
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            explain.analysis(explain.Attributions(("a", "b"), np.ones((1, 2)), 0.1, np.ones(1)))
        )
    )
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    with (tampered / "model.joblib").open("ab") as handle:
        handle.write(b"\0")

    def args(capture: Path = root, model: Path = model_dir, report: Path = analysis) -> list[str]:
        return [
            "--capture",
            str(capture),
            "--baseline",
            str(model),
            "--explainability",
            str(report),
        ]

    cases = {
        "no report": (["--capture", str(root), "--baseline", str(model_dir)], "--explainability"),
        "not an analysis": (args(report=root), "cannot read it"),
        "another model": (args(report=other), "explains another model"),
        "tampered model": (args(model=tampered), "refusing to load it"),
        "no model": (args(model=tmp_path / "nope"), "no such model"),
        "no capture": (args(capture=tmp_path / "nope"), "no such folder"),
        "bad rows": ([*args(), "--max-rows", "0"], "--max-rows must be at least 1"),
        "bad end": ([*args(), "--end", "yesterday"], "not an ISO 8601 time"),
    }
    for name, (argv, message) in cases.items():
        assert attribution.main([*argv, "--output", str(tmp_path / "out")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (name, err)
        assert "Traceback" not in err and err.count("\n") == 1, name


def test_an_empty_window_is_silent(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    root = capture(tmp_path / "capture", test_rows.iloc[:30], end=END - timedelta(days=3))
    code, out = run_job(tmp_path, root, model_dir, analysis)
    assert code == attribution.EXIT_SILENT
    report = report_of(out)
    assert report["status"] == "no_records"
    assert report["ndcg"] is None
    assert not (out / "analysis.json").exists()
    code, _ = run_job(tmp_path, root, model_dir, analysis, "--min-records", "0")
    assert code == attribution.EXIT_OK


# --- AWS ---------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield
        boto3.DEFAULT_SESSION = None


def put_capture(rows: pd.DataFrame, when: datetime) -> None:
    key = f"capture/{ENDPOINT}/AllTraffic/{when:%Y/%m/%d/%H}/{when:%M-%S}-part.jsonl"
    body = "".join(json.dumps(record(b, t, when)) + "\n" for b, t in requests(rows))
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def register(model_dir: Path, analysis: Path, tmp_path: Path) -> str:
    """A model package as the pipeline registers it: archive and explainability report."""
    s3 = boto3.client("s3")
    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="models/1/model.tar.gz", Body=archive.path.read_bytes())
    s3.put_object(Bucket=BUCKET, Key="evaluation/1/analysis.json", Body=analysis.read_bytes())
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-prod-models")
    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName="churn-prod-models",
        InferenceSpecification={
            "Containers": [
                {"Image": "sklearn:1.9-0", "ModelDataUrl": f"s3://{BUCKET}/models/1/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "Explainability": {
                "Report": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{BUCKET}/evaluation/1/analysis.json",
                }
            }
        },
    )["ModelPackageArn"]
    return arn


def _metrics(cloudwatch: Any) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for metric in cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]:
        found.setdefault(metric["MetricName"], []).append(
            {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        )
    return found


def _value(cloudwatch: Any, name: str, since: datetime, **dimensions: str) -> float:
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=since - timedelta(hours=1), EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=3600, Statistics=["Maximum"],
    )["Datapoints"]  # fmt: skip
    assert len(points) == 1, name
    return float(points[0]["Maximum"])


@pytest.mark.usefixtures("aws")
def test_a_model_package_names_the_model_and_its_report_and_metrics_are_published(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    arn = register(model_dir, analysis, tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    put_capture(test_rows.iloc[:150], now - timedelta(minutes=10))
    code = attribution.main(
        ["--capture", f"s3://{BUCKET}/capture", "--baseline", arn,
         "--output", f"s3://{BUCKET}/attribution/run-1", "--end", now.isoformat(),
         "--publish", "--namespace", NAMESPACE],
    )  # fmt: skip
    assert code == attribution.EXIT_OK
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=BUCKET, Key="attribution/run-1/attribution.json")["Body"]
    report = json.loads(body.read())
    assert report["explainability"] == f"s3://{BUCKET}/evaluation/1/analysis.json"
    assert report["model"] == f"s3://{BUCKET}/models/1/model.tar.gz"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="attribution/run-1/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in listed} == {
        "attribution.json", "analysis.json", "constraint_violations.json", "attribution.html",
    }  # fmt: skip

    cloudwatch = boto3.client("cloudwatch")
    found = _metrics(cloudwatch)
    endpoint = {"EndpointName": ENDPOINT}
    assert found["ExplainedRecords"] == [endpoint]
    assert found["AttributionNDCG"] == [endpoint]
    assert sorted(d["Feature"] for d in found["FeatureAttribution"]) == sorted(ds.FEATURES)
    assert all(d["EndpointName"] == ENDPOINT for d in found["FeatureAttribution"])
    assert _value(cloudwatch, "ExplainedRecords", now, **endpoint) == 150
    assert _value(cloudwatch, "AttributionNDCG", now, **endpoint) == pytest.approx(report["ndcg"])
    top = report["features"][0]
    assert _value(
        cloudwatch, "FeatureAttribution", now, **endpoint, Feature=top["name"]
    ) == pytest.approx(top["live"])


@pytest.mark.usefixtures("aws")
def test_an_empty_window_publishes_zero_explained_records_first(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    put_capture(test_rows.iloc[:20], datetime.now(UTC) - timedelta(days=3))
    code = attribution.main(
        ["--capture", f"s3://{BUCKET}/capture", "--baseline", str(model_dir),
         "--explainability", str(analysis), "--output", str(tmp_path / "out"),
         "--publish", "--namespace", NAMESPACE, "--endpoint-name", ENDPOINT],
    )  # fmt: skip
    assert code == attribution.EXIT_SILENT
    cloudwatch = boto3.client("cloudwatch")
    assert set(_metrics(cloudwatch)) == {"ExplainedRecords"}
    assert _value(cloudwatch, "ExplainedRecords", datetime.now(UTC), EndpointName=ENDPOINT) == 0


@pytest.mark.usefixtures("aws")
def test_a_package_without_an_explainability_report_needs_one_named(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="m/model.tar.gz", Body=archive.path.read_bytes()
    )
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="g",
        InferenceSpecification={
            "Containers": [{"Image": "i", "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    code = attribution.main(["--capture", str(tmp_path), "--baseline", arn])
    assert code == attribution.EXIT_USAGE
    err = capsys.readouterr().err
    assert "names no explainability report: pass --explainability" in err


# --- mlops attribution -------------------------------------------------------------------


def test_mlops_attribution_runs_the_job(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, analysis: Path
) -> None:
    root = capture(tmp_path / "capture", test_rows.iloc[:60])
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["attribution", "--capture", str(root), "--baseline", str(model_dir),
         "--explainability", str(analysis), "--output", str(out), "--end", END.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert report_of(out)["records"]["explained"] == 60
    missing = CliRunner().invoke(
        app, ["attribution", "--capture", str(root), "--baseline", str(tmp_path / "none")]
    )
    assert missing.exit_code == 2
