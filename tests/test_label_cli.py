"""`mlops label`: a labels file checked line by line, then written as ground truth where the
quality job reads it; a bad file is refused in one line and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mlops.cli import app
from monitoring import ground_truth

REPO = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "labels-bucket"
AT = "2026-11-24T10:15:00Z"
GOOD = 'id,label\nreq-1,1\nreq-2,no\nreq-3,"1,0,0"\n'


def _label(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["label", *args], terminal_width=400)
    return result.exit_code, result.output


def _file(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _written(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl"))


def test_labels_go_to_the_hour_folder_in_ground_truth_format(tmp_path: Path) -> None:
    code, output = _label("--labels", str(_file(tmp_path, GOOD)), "--to", str(tmp_path / "gt"),
                          "--at", AT)  # fmt: skip
    assert code == 0, output
    (written,) = _written(tmp_path / "gt")
    assert written.parent == tmp_path / "gt" / "2026" / "11" / "24" / "10"
    assert written.name.startswith("labels-")
    assert f"wrote 3 label record(s) (5 row(s)) from {tmp_path / 'labels.csv'} to {written}" in (
        output.replace("\n", "")
    )
    lines = written.read_text().splitlines()
    assert json.loads(lines[0]) == {
        "groundTruthData": {"data": "1", "encoding": "CSV"},
        "eventMetadata": {"eventId": "req-1"},
        "eventVersion": "0",
    }
    assert [ground_truth.parse(line).labels for line in lines] == [(1,), (0,), (1, 0, 0)]


def test_the_same_labels_again_in_the_same_hour_replace_the_file(tmp_path: Path) -> None:
    labels = str(_file(tmp_path, GOOD))
    for at in (AT, "2026-11-24T10:50:00+00:00"):
        assert _label("--labels", labels, "--to", str(tmp_path / "gt"), "--at", at)[0] == 0
    assert len(_written(tmp_path / "gt")) == 1


def test_a_jsonl_file_already_in_ground_truth_format_is_accepted(tmp_path: Path) -> None:
    lines = ground_truth.to_line("a", [1]) + "\n" + ground_truth.to_line("b", [0, 1]) + "\n"
    code, output = _label("--labels", str(_file(tmp_path, lines, "gt.jsonl")),
                          "--to", str(tmp_path / "gt"), "--at", AT)  # fmt: skip
    assert code == 0, output
    (written,) = _written(tmp_path / "gt")
    assert written.read_text() == lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty; expected a header id,label and rows"),
        ("id,label\n", "no labels in the file"),
        ("id,outcome\nreq-1,1\n", "the header has no label column (found 'id', 'outcome')"),
        ("id,label\nreq-1,1\nreq-2,2\nreq-3,maybe\n", "2 bad line(s), nothing uploaded: line 3"),
        ('id,label\nreq-1,1\n"unclosed,1\n', "1 bad line(s), nothing uploaded"),
        ("id,label\nreq-1,1\nreq-1,0\n", "line 3: id 'req-1' again (first on line 2)"),
    ],
    ids=["empty", "header-only", "missing-column", "non-binary", "bad-csv", "duplicate"],
)
def test_a_bad_labels_file_is_one_line_and_nothing_is_written(
    tmp_path: Path, text: str, message: str
) -> None:
    code, output = _label("--labels", str(_file(tmp_path, text)), "--to", str(tmp_path / "gt"))
    assert code == 1
    assert output.startswith("error: ") and message in output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert not (tmp_path / "gt").exists()


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"id,label\n\xff\xfe,1\n")
    code, output = _label("--labels", str(path), "--to", str(tmp_path / "gt"))
    assert code == 1
    assert "not UTF-8 text (byte 9)" in output


def test_a_missing_file_bad_time_or_no_target_is_one_line(tmp_path: Path) -> None:
    cases = [
        (["--labels", str(tmp_path / "nope.csv"), "--to", str(tmp_path)], "No such file"),
        (["--labels", str(_file(tmp_path, GOOD)), "--to", str(tmp_path), "--at", "soon"],
         "--at 'soon' is not an ISO 8601 time"),
        (["--labels", str(_file(tmp_path, GOOD))], "pass --to (a folder or s3:// prefix)"),
    ]  # fmt: skip
    for args, message in cases:
        code, output = _label(*args)
        assert code == 1 and message in output and output.count("\n") == 1, output


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _keys(bucket: str) -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_labels_upload_to_s3(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    code, output = _label("--labels", str(_file(tmp_path, GOOD)),
                          "--to", f"s3://{BUCKET}/groundtruth/churn-prod/", "--at", AT,
                          "--region", REGION)  # fmt: skip
    assert code == 0, output
    (key,) = _keys(BUCKET)
    assert key.startswith("groundtruth/churn-prod/2026/11/24/10/labels-") and key.endswith(".jsonl")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert [ground_truth.parse(line).event_id for line in body.splitlines()] == [
        "req-1",
        "req-2",
        "req-3",
    ]


def test_a_bad_file_uploads_nothing(aws: None, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    code, _ = _label("--labels", str(_file(tmp_path, "id,label\nreq-1,7\n")),
                     "--to", f"s3://{BUCKET}/groundtruth/churn-prod/")  # fmt: skip
    assert code == 1
    assert _keys(BUCKET) == []


def test_a_missing_bucket_is_what_aws_refused(aws: None, tmp_path: Path) -> None:
    code, output = _label("--labels", str(_file(tmp_path, GOOD)), "--to", "s3://no-such-bucket/gt/",
                          "--region", REGION)  # fmt: skip
    assert code == 1
    assert output.startswith("error: AWS refused the request:") and "NoSuchBucket" in output


def test_a_stack_names_its_ground_truth_prefix(aws: None, tmp_path: Path) -> None:
    bucket = f"churn-dev-capture-{ACCOUNT}-{REGION}"
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    code, output = _label("--labels", str(_file(tmp_path, GOOD)), "--stack", "dev",
                          "--project-dir", str(REPO), "--at", AT)  # fmt: skip
    assert code == 0, output
    (key,) = _keys(bucket)
    assert key.startswith("groundtruth/churn-dev-endpoint/2026/11/24/10/labels-")
