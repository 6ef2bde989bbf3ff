"""The drift job against (moto) AWS: S3 capture, a registry baseline, CloudWatch metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from moto import mock_aws
from test_drift import END, ENDPOINT, record, requests

from inference.packaging import build_model_archive
from monitoring import drift

REGION = "eu-west-1"
BUCKET = "churn-prod-capture"
NAMESPACE = "MLOpsKit/churn-prod"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """moto, plus a record of every S3 list and get request the job makes."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    calls: dict[str, list[dict[str, Any]]] = {"ListObjectsV2": [], "GetObject": []}
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)

        def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls[model.name].append(dict(params))

        for operation in calls:
            boto3.DEFAULT_SESSION.events.register(f"provide-client-params.s3.{operation}", spy)  # type: ignore[union-attr]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield calls
        boto3.DEFAULT_SESSION = None


def put_capture(
    rows: pd.DataFrame, when: datetime, endpoint: str = ENDPOINT, prefix: str = "capture"
) -> str:
    key = f"{prefix}/{endpoint}/AllTraffic/{when:%Y/%m/%d/%H}/{when:%M-%S}-part.jsonl"
    body = "".join(json.dumps(record(b, t, when)) + "\n" for b, t in requests(rows))
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    return key


def read_report(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((path / "drift.json").read_text())
    return loaded


def test_s3_listing_touches_only_the_window_hours(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    inside = [END - timedelta(minutes=20), END - timedelta(hours=1, minutes=50)]
    outside = [END, END - timedelta(hours=3), END - timedelta(days=40)]
    for when in inside + outside:
        put_capture(test_rows.iloc[:30], when)
    put_capture(test_rows.iloc[:30], inside[0], endpoint="other-endpoint")
    code = drift.main(
        ["--capture", f"s3://{BUCKET}/capture/", "--baseline", str(model_dir),
         "--output", str(tmp_path / "out"), "--end", END.isoformat(), "--window-hours", "2",
         "--endpoint-name", ENDPOINT],
    )  # fmt: skip
    assert code == 0
    report = read_report(tmp_path / "out")
    assert report["records"]["rows"] == 60
    assert report["endpoint"] == ENDPOINT

    hour_prefixes = {f"capture/{ENDPOINT}/AllTraffic/{h:%Y/%m/%d/%H}/" for h in (
        END - timedelta(hours=1), END - timedelta(hours=2))}  # fmt: skip
    deep = [c["Prefix"] for c in aws["ListObjectsV2"] if "Delimiter" not in c]
    assert set(deep) == hour_prefixes
    # Delimiter listings only walk the endpoint/variant levels above the dated folders.
    shallow = [c["Prefix"] for c in aws["ListObjectsV2"] if "Delimiter" in c]
    assert set(shallow) == {"capture/", f"capture/{ENDPOINT}/", f"capture/{ENDPOINT}/AllTraffic/"}
    read = {c["Key"].rsplit("/", 1)[0] + "/" for c in aws["GetObject"]}
    assert read == hour_prefixes


def test_baseline_from_a_model_package_arn(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="models/1/model.tar.gz", Body=archive.path.read_bytes()
    )
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn-prod-models")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="churn-prod-models",
        InferenceSpecification={
            "Containers": [
                {"Image": "sklearn:1.9-0", "ModelDataUrl": f"s3://{BUCKET}/models/1/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    put_capture(test_rows, END - timedelta(minutes=5))
    code = drift.main(
        ["--capture", f"s3://{BUCKET}/capture", "--baseline", arn,
         "--output", f"s3://{BUCKET}/drift/run-1", "--end", END.isoformat()],
    )  # fmt: skip
    assert code == 0
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key="drift/run-1/drift.json")["Body"]
    report = json.loads(body.read())
    assert report["baseline"] == arn
    assert report["drifted_features"] == []
    html = boto3.client("s3").get_object(Bucket=BUCKET, Key="drift/run-1/drift.html")["Body"]
    assert b"<svg" in html.read()


def test_unknown_model_package_is_a_caller_error(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/churn-prod-models/9"
    code = drift.main(["--capture", str(tmp_path), "--baseline", arn])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --baseline arn:") and "Traceback" not in err


def _metrics(cloudwatch: Any) -> dict[str, list[dict[str, str]]]:
    listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    found: dict[str, list[dict[str, str]]] = {}
    for metric in listed:
        found.setdefault(metric["MetricName"], []).append(
            {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        )
    return found


def test_metrics_are_published_to_cloudwatch(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    shifted = test_rows.assign(total_day_minutes=test_rows["total_day_minutes"] + 80)
    put_capture(shifted, now - timedelta(minutes=10))
    code = drift.main(
        ["--capture", f"s3://{BUCKET}/capture", "--baseline", str(model_dir),
         "--output", str(tmp_path / "out"), "--end", now.isoformat(), "--publish",
         "--namespace", NAMESPACE],
    )  # fmt: skip
    assert code == 0
    cloudwatch = boto3.client("cloudwatch")
    found = _metrics(cloudwatch)
    endpoint = {"EndpointName": ENDPOINT}
    for name in ("DriftScore", "DriftedFeatures", "CaptureRecords", "MalformedRecords"):
        assert found[name] == [endpoint], name
    report = read_report(tmp_path / "out")
    assert sorted(d["Feature"] for d in found["FeaturePSI"]) == sorted(report["features"])

    def value(name: str, **dims: str) -> float:
        stats = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE, MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in {**endpoint, **dims}.items()],
            StartTime=now - timedelta(hours=1), EndTime=datetime.now(UTC) + timedelta(hours=1),
            Period=3600, Statistics=["Maximum"],
        )["Datapoints"]  # fmt: skip
        assert len(stats) == 1, name
        return float(stats[0]["Maximum"])

    assert value("DriftedFeatures") == 1
    assert value("DriftScore") == pytest.approx(report["drift_score"])
    assert value("FeaturePSI", Feature="total_day_minutes") == pytest.approx(report["drift_score"])
    assert value("CaptureRecords") == report["records"]["used"]


def _capture_records(cloudwatch: Any) -> list[float]:
    stats = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="CaptureRecords",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1), Period=3600, Statistics=["Sum"],
    )["Datapoints"]  # fmt: skip
    return [float(point["Sum"]) for point in stats]


def test_an_empty_window_publishes_zero_records_and_no_score_and_exits_3(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, test_rows: pd.DataFrame,
    model_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    put_capture(test_rows.iloc[:30], datetime.now(UTC) - timedelta(days=3))
    code = drift.main(
        ["--capture", f"s3://{BUCKET}/capture", "--baseline", str(model_dir),
         "--output", str(tmp_path / "out"), "--publish", "--namespace", NAMESPACE,
         "--endpoint-name", ENDPOINT],
    )  # fmt: skip
    assert code == drift.EXIT_SILENT
    cloudwatch = boto3.client("cloudwatch")
    # CaptureRecords=0 is published before the exit: the drift-silent alarm watches it.
    assert set(_metrics(cloudwatch)) == {"CaptureRecords", "MalformedRecords"}
    assert _capture_records(cloudwatch) == [0.0]
    out, err = capsys.readouterr()
    assert "no capture records in the window" in out
    assert err.startswith("error: 0 capture record(s) in the window") and "Traceback" not in err
    assert read_report(tmp_path / "out")["status"] == "no_records"


@pytest.mark.parametrize("where", ["bucket root", "hour folder"])
def test_a_wrong_prefix_publishes_zero_records_and_exits_3(
    aws: dict[str, list[dict[str, Any]]], tmp_path: Path, test_rows: pd.DataFrame,
    model_dir: Path, capsys: pytest.CaptureFixture[str], where: str,
) -> None:  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    key = put_capture(test_rows.iloc[:30], now - timedelta(minutes=10), prefix="datacapture")
    capture = (
        f"s3://{BUCKET}/" if where == "bucket root" else f"s3://{BUCKET}/{key.rsplit('/', 1)[0]}/"
    )
    code = drift.main(
        ["--capture", capture, "--baseline", str(model_dir), "--output", str(tmp_path / "out"),
         "--end", now.isoformat(), "--publish", "--namespace", NAMESPACE,
         "--endpoint-name", ENDPOINT],
    )  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: no capture layout under {capture}") and err.count("\n") == 1
    assert _capture_records(boto3.client("cloudwatch")) == [0.0]
    assert read_report(tmp_path / "out")["status"] == "no_capture_layout"
