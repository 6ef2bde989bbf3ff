"""Local batch inference (inference/batch.py), the split job, batch capture and the handler's
batch mode, here and inside the scikit-learn image's own serving stack."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import run_job
from moto import mock_aws
from sagemaker_image import image_filesystem, serving_container

from inference import batch, batch_split, handler
from inference import batch_contract as contract
from inference.packaging import build_model_archive, extract_model_archive
from inference.server import free_port
from monitoring import batch_capture, drift
from monitoring.store import LocalStore
from pipelines.spec import SERVING_ENVIRONMENT

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> handler.ServingModel:
    return handler.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def frame(test_rows: pd.DataFrame, model: handler.ServingModel) -> pd.DataFrame:
    return test_rows.iloc[:200].loc[:, list(model.feature_order)].reset_index(drop=True)


def _csv_line(record_id: str, values: list[Any]) -> str:
    return ",".join([record_id, *map(str, values)])


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _expected(model: handler.ServingModel, frame: pd.DataFrame) -> np.ndarray:
    """The model's own probabilities, straight from scikit-learn."""
    return np.asarray(model.pipeline.predict_proba(frame)[:, 1])


def _run(model_dir: Path, tmp_path: Path, **options: Any) -> batch.BatchResult:
    return batch.run(model_dir, tmp_path / "in", tmp_path / "out", now=NOW, **options)


def _out_rows(result: batch.BatchResult, name: str) -> list[list[str]]:
    with open(result.transform / name, newline="") as handle:
        return list(csv.reader(handle))


# --- order, and the join --------------------------------------------------------------------


def test_ids_and_order_survive_mini_batch_boundaries(
    model_dir: Path,
    model: handler.ServingModel,
    frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [f"id-{i:03d}" for i in range(len(frame))]
    values = frame.astype(str).to_numpy().tolist()
    _write(
        tmp_path / "in" / "part-1.csv", [_csv_line(i, v) for i, v in zip(ids, values, strict=True)]
    )
    # A "megabyte" of 2,000 bytes: 200 rows of ~100 bytes make about ten mini-batches.
    monkeypatch.setattr(batch, "MB", 2000)
    sizes: list[int] = []
    original = handler.transform_batch

    def counting(*args: Any) -> tuple[str, str]:
        sizes.append(len(handler.batch_lines(args[1])))
        return original(*args)

    monkeypatch.setattr(handler, "transform_batch", counting)
    result = _run(model_dir, tmp_path, max_payload_mb=1)

    assert len(sizes) >= 8 and sum(sizes) == len(frame)
    rows = _out_rows(result, "part-1.csv.out")
    assert [r[0] for r in rows] == ids
    np.testing.assert_allclose([float(r[3]) for r in rows], _expected(model, frame), atol=1e-6)
    labels = ["yes" if p >= 0.5 else "no" for p in _expected(model, frame)]
    assert [r[1] for r in rows] == labels
    assert all(r[4] == r[5] == "" for r in rows)
    predictions = (result.predictions / "part-1.csv.out").read_text().splitlines()
    assert [line.split(",")[0] for line in predictions] == ids
    assert not list(result.errors.glob("*")) and result.summary.rows == result.summary.scored == 200


def test_csv_output_is_the_join_sagemakers_output_filter_selects(
    model_dir: Path, frame: pd.DataFrame, tmp_path: Path, model: handler.ServingModel
) -> None:
    inputs = [
        _csv_line(f"r{i}", v) for i, v in enumerate(frame.iloc[:5].astype(str).to_numpy().tolist())
    ]
    _write(tmp_path / "in" / "a.csv", inputs)
    result = _run(model_dir, tmp_path)
    body = "".join(line.split(",", 1)[1] + "\n" for line in inputs)  # InputFilter $[1:]
    answer, _ = handler.transform_batch(model, body, contract.CSV, contract.CSV, "errors")
    for line, handler_line, out in zip(
        inputs, answer.splitlines(), _out_rows(result, "a.csv.out"), strict=True
    ):
        joined = line.split(",") + handler_line.split(",")  # JoinSource "Input"
        assert [joined[i] for i in (0, -5, -4, -3, -2, -1)] == out  # OutputFilter


def test_json_lines_keep_any_id_and_nest_the_answer_as_sagemaker_output(
    model_dir: Path, model: handler.ServingModel, frame: pd.DataFrame, tmp_path: Path
) -> None:
    records = frame.iloc[:3].to_dict(orient="records")
    ids: list[Any] = ["a", 17, {"k": 1}]
    lines = [json.dumps({"id": i, "features": r}) for i, r in zip(ids, records, strict=True)]
    _write(tmp_path / "in" / "x.jsonl", lines)
    result = _run(model_dir, tmp_path, content_type=contract.JSON_LINES)
    out = [json.loads(x) for x in (result.transform / "x.jsonl.out").read_text().splitlines()]
    assert [o["id"] for o in out] == ids
    expected = _expected(model, frame.iloc[:3])
    for o, p in zip(out, expected, strict=True):
        answer = o["SageMakerOutput"]
        assert set(o) == {"id", "SageMakerOutput"} and answer["error"] is None
        assert answer["probabilities"]["yes"] == pytest.approx(p, abs=1e-6)
    kept = [json.loads(x) for x in (result.predictions / "x.jsonl.out").read_text().splitlines()]
    assert [k["id"] for k in kept] == ids and set(kept[0]) == {"id", "label", "probabilities"}


# --- bad rows ------------------------------------------------------------------------------


def _csv_cases(values: list[str], model: handler.ServingModel) -> dict[str, tuple[str, str | None]]:
    """Input line per case, and the reason it gets (None: scored)."""
    numeric = model.feature_order.index("account_length")
    categorical = model.feature_order.index("state")

    def changed(at: int, value: str) -> str:
        cells = list(values)
        cells[at] = value
        return ",".join(cells)

    return {
        "too few values": (",".join(values[:-1]), contract.WRONG_COLUMN_COUNT),
        "too many values": (",".join([*values, "1"]), contract.WRONG_COLUMN_COUNT),
        "not a number": (changed(numeric, "abc"), contract.NOT_A_NUMBER),
        "empty number": (changed(numeric, ""), contract.MISSING_VALUE),
        "infinite": (changed(numeric, "inf"), contract.NOT_FINITE),
        "empty category": (changed(categorical, ""), contract.MISSING_VALUE),
        "bad quoting": ('"' + ",".join(values), contract.WRONG_COLUMN_COUNT),
        # A category the model never saw is scored, as on the endpoint (the encoder ignores it).
        "unknown category": (changed(categorical, "Atlantis"), None),
    }


def test_errors_mode_answers_every_row_and_the_split_counts_them(
    model_dir: Path, model: handler.ServingModel, frame: pd.DataFrame, tmp_path: Path
) -> None:
    values = frame.iloc[0].astype(str).tolist()
    cases = _csv_cases(values, model)
    lines, expected = [], {}
    for n, (name, (line, reason)) in enumerate(cases.items()):
        lines.append(_csv_line(f"good-{n}", values))
        lines.append(f"{name.replace(' ', '-')},{line}")
        expected[len(lines)] = reason
    lines += ["", _csv_line("last", values)]
    expected[len(lines) - 1] = contract.EMPTY_LINE
    _write(tmp_path / "in" / "sub" / "b.csv", lines)

    result = _run(model_dir, tmp_path)

    bad = {line: reason for line, reason in expected.items() if reason}
    summary = result.summary
    assert (summary.rows, summary.errors) == (len(lines), len(bad))
    assert summary.scored + summary.errors == summary.rows
    assert dict(summary.errors_by_reason) == {
        contract.WRONG_COLUMN_COUNT: 3,
        contract.NOT_A_NUMBER: 1,
        contract.MISSING_VALUE: 2,
        contract.NOT_FINITE: 1,
        contract.EMPTY_LINE: 1,
    }
    assert len(_out_rows(result, "sub/b.csv.out")) == len(lines)  # one answer per line
    errors = [
        json.loads(x) for x in (result.errors / "sub/b.csv.errors.jsonl").read_text().splitlines()
    ]
    assert {e["line"]: e["error"] for e in errors} == bad
    assert {e["file"] for e in errors} == {"sub/b.csv"}
    assert (
        errors[0]["id"] == "too-few-values"
        and "18 values; the model takes 19" in errors[0]["detail"]
    )
    scored = (result.predictions / "sub/b.csv.out").read_text().splitlines()
    assert "unknown-category" in {line.split(",")[0] for line in scored}
    assert json.loads(result.summary_file.read_text())["errors"] == len(bad)


@pytest.mark.parametrize(
    "case",
    ["too few values", "not a number", "empty number", "infinite", "empty category", "empty line"],
)
def test_fail_mode_stops_at_the_bad_row_naming_file_and_line(
    case: str, model_dir: Path, model: handler.ServingModel, frame: pd.DataFrame, tmp_path: Path
) -> None:
    values = frame.iloc[0].astype(str).tolist()
    bad_line = "" if case == "empty line" else "x," + _csv_cases(values, model)[case][0]
    reason = contract.EMPTY_LINE if case == "empty line" else _csv_cases(values, model)[case][1]
    _write(tmp_path / "in" / "ok.csv", [_csv_line("a", values)])
    _write(
        tmp_path / "in" / "z.csv", [_csv_line("b", values)] * 4 + [bad_line, _csv_line("c", values)]
    )
    with pytest.raises(batch.BatchError, match=rf"^z\.csv line 5: .*\({reason}\)"):
        _run(model_dir, tmp_path, bad_rows=contract.BadRows.FAIL)
    # The file before it is complete; the failed one leaves no partial output behind.
    assert (tmp_path / "out" / "transform" / "ok.csv.out").is_file()
    assert not list((tmp_path / "out" / "transform").glob("z.csv*"))


def test_json_lines_bad_rows_in_both_modes(
    model_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    features = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
    good = json.dumps({"id": "g", "features": features})
    cases = {
        "{not json": contract.BAD_JSON,
        "[1, 2]": contract.BAD_SHAPE,
        json.dumps({"id": "nf"}): contract.BAD_SHAPE,
        json.dumps({"id": "u", "features": features | {"extra": 1}}): contract.UNKNOWN_COLUMN,
        json.dumps(
            {"id": "m", "features": {k: features[k] for k in list(features)[1:]}}
        ): contract.MISSING_COLUMN,
        json.dumps({"id": "t", "features": features | {"state": 5}}): contract.NOT_TEXT,
        json.dumps(
            {"id": "n", "features": features | {"account_length": None}}
        ): contract.MISSING_VALUE,
        json.dumps(
            {"id": "b", "features": features | {"account_length": True}}
        ): contract.NOT_A_NUMBER,
        "": contract.EMPTY_LINE,
        # A number sent as text is read as the endpoint reads it.
        json.dumps({"id": "s", "features": features | {"account_length": "12"}}): None,
    }
    lines = [good, *cases, good]
    _write(tmp_path / "in" / "j.jsonl", lines)
    result = _run(model_dir, tmp_path, content_type=contract.JSON_LINES)
    reasons = [
        json.loads(x)["SageMakerOutput"]["error"]
        for x in (result.transform / "j.jsonl.out").read_text().splitlines()
    ]
    assert reasons == [None, *cases.values(), None]
    assert result.summary.rows == len(lines) and result.summary.scored == 3

    with pytest.raises(
        batch.BatchError, match=r"^j\.jsonl line 2: the line is not JSON.*\(bad_json\)"
    ):
        batch.run(
            model_dir,
            tmp_path / "in",
            tmp_path / "fail",
            content_type=contract.JSON_LINES,
            bad_rows=contract.BadRows.FAIL,
        )


# --- usage errors ----------------------------------------------------------------------------


def test_usage_errors_are_one_clear_line(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "in" / "a.csv", ["a,1"])
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input_dir": tmp_path / "nope"}, "input folder .*nope does not exist"),
        ({"input_dir": tmp_path / "empty"}, "input folder .*empty has no files"),
        ({"model_dir": tmp_path}, "is not a model directory from training"),
        ({"content_type": "text/plain"}, "content type 'text/plain' is not one of"),
        ({"max_payload_mb": 0}, "max payload 0 MB is outside 1..100"),
        ({"output_dir": tmp_path / "in" / "out"}, "is inside the input folder"),
    ]
    for change, message in cases:
        options: dict[str, Any] = {
            "model_dir": model_dir,
            "input_dir": tmp_path / "in",
            "output_dir": tmp_path / "out",
        } | change
        with pytest.raises(batch.BatchError, match=message):
            batch.run(**options)


def test_a_record_larger_than_the_payload_limit_is_named(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "MB", 100)
    _write(tmp_path / "in" / "a.csv", ["a,1", "b," + "9" * 200])
    with pytest.raises(batch.BatchError, match=r"a\.csv line 2: the record is 201 bytes"):
        _run(model_dir, tmp_path, max_payload_mb=1)


# --- batch capture, read by the drift job ------------------------------------------------------


def test_capture_manifests_feed_the_drift_job(
    model_dir: Path, frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = frame.astype(str).to_numpy().tolist()
    lines = [_csv_line(f"r{i}", v) for i, v in enumerate(values[:150])]
    lines[10] = "r10,1,2"  # wrong width: an error row here, a malformed record there
    _write(tmp_path / "in" / "a.csv", lines[:100])
    _write(tmp_path / "in" / "b.csv", lines[100:])
    result = _run(model_dir, tmp_path)
    assert result.capture is not None
    manifest = json.loads(
        (result.capture / "input/2026/11/30/12").glob("*.jsonl").__next__().read_text()
    )
    assert manifest == [{"prefix": str((tmp_path / "in").resolve()) + "/"}, "a.csv", "b.csv"]

    original = drift._store
    monkeypatch.setattr(drift, "_store", lambda o: batch_capture.wrap(original(o), o.capture))
    report = drift.run(
        drift.parse_options(
            [
                "--capture",
                str(result.capture),
                "--baseline",
                str(model_dir),
                "--output",
                str(tmp_path / "drift"),
                "--end",
                "2026-11-30T13:00:00",
            ]
        ),
        log=lambda _: None,
    )
    assert report.counts.used == result.summary.scored == 149
    assert dict(report.counts.malformed) == {"wrong_column_count": 1}


def test_endpoint_capture_is_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "ep" / "AllTraffic" / "2026").mkdir(parents=True)
    store = LocalStore()
    assert batch_capture.wrap(store, str(tmp_path)) is store


# --- the split job ------------------------------------------------------------------------------

OUT_LINES = [
    "a,no,0.900000,0.100000,,",
    "b,,,,not_a_number,column x: 'q' is not a number",
    "c,yes,0.200000,0.800000,,,3f1d-uuid,2022-08-30T00:49:15Z",  # GenerateInferenceId columns
    "garbage",
]


def test_split_job_parts_predictions_from_errors_locally(tmp_path: Path) -> None:
    _write(tmp_path / "out" / "d" / "f.csv.out", OUT_LINES)
    code = batch_split.main(
        [
            "--input",
            str(tmp_path / "out"),
            "--predictions",
            str(tmp_path / "p"),
            "--errors",
            str(tmp_path / "e"),
        ]
    )
    assert code == batch_split.EXIT_OK
    assert (tmp_path / "p" / "d" / "f.csv.out").read_text() == (
        "a,no,0.900000,0.100000\nc,yes,0.200000,0.800000\n"
    )
    errors = [
        json.loads(x)
        for x in (tmp_path / "e" / "d" / "f.csv.errors.jsonl").read_text().splitlines()
    ]
    assert [(e["line"], e["id"], e["error"]) for e in errors] == [
        (2, "b", "not_a_number"),
        (4, None, batch_split.UNREADABLE_OUTPUT),
    ]
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary == {
        "files": 1,
        "rows": 4,
        "scored": 2,
        "errors": 2,
        "errors_by_reason": {"not_a_number": 1, "unreadable_output": 1},
    }


def test_split_job_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    argv = ["--predictions", str(tmp_path / "p"), "--errors", str(tmp_path / "e")]
    assert batch_split.main(["--input", str(tmp_path / "empty"), *argv]) == batch_split.EXIT_SILENT
    assert batch_split.main(["--input", str(tmp_path / "nope"), *argv]) == batch_split.EXIT_USAGE
    assert "nope: no such folder" in capsys.readouterr().err
    same = ["--input", str(tmp_path / "p"), *argv]
    assert batch_split.main(same) == batch_split.EXIT_USAGE


def test_split_job_reads_and_writes_s3() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="batch")
        s3.put_object(
            Bucket="batch", Key="out/f.csv.out", Body="\n".join(OUT_LINES).encode() + b"\n"
        )
        code = batch_split.main(
            [
                "--input",
                "s3://batch/out/",
                "--predictions",
                "s3://batch/pred/",
                "--errors",
                "s3://batch/err/",
                "--region",
                "us-east-1",
            ]
        )
        assert code == batch_split.EXIT_OK
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="batch")["Contents"]}
        assert {"pred/f.csv.out", "err/f.csv.errors.jsonl", "err/summary.json"} <= keys
        body = s3.get_object(Bucket="batch", Key="pred/f.csv.out")["Body"].read().decode()
        assert body.splitlines()[0] == "a,no,0.900000,0.100000"


# --- the handler's batch mode in the image's own serving stack -----------------------------------


@pytest.fixture(scope="module")
def batch_worker(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("batch-image")
    archive = build_model_archive(model_dir, root / "model.tar.gz").path
    fs = image_filesystem(root)
    extract_model_archive(archive, fs.ml / "model")
    environment = {**SERVING_ENVIRONMENT, contract.BAD_ROWS_ENV: "errors"}
    with (
        serving_container(fs, environment, port=free_port()) as container,
        httpx.Client(base_url=container.url, timeout=60) as client,
    ):
        yield client


def test_the_image_answers_each_line_of_a_mini_batch(
    batch_worker: httpx.Client, model: handler.ServingModel, frame: pd.DataFrame
) -> None:
    good = frame.iloc[:3].astype(str).to_numpy().tolist()
    lines = [",".join(good[0]), "1,2", ",".join(good[1]), "", ",".join(good[2])]
    body = ("\n".join(lines) + "\n").encode()
    reply = batch_worker.post(
        "/invocations", content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert reply.status_code == 200, reply.text
    rows = [line.split(",") for line in reply.text.splitlines()]
    assert [r[3] for r in rows] == ["", contract.WRONG_COLUMN_COUNT, "", contract.EMPTY_LINE, ""]
    expected = _expected(model, frame.iloc[:3])
    np.testing.assert_allclose([float(rows[i][2]) for i in (0, 2, 4)], expected, atol=1e-6)

    jl = "\n".join(json.dumps(r) for r in frame.iloc[:2].to_dict(orient="records")) + "\n{x\n"
    reply = batch_worker.post(
        "/invocations", content=jl.encode(), headers={"Content-Type": "application/jsonlines"}
    )
    assert reply.status_code == 200, reply.text
    answers = [json.loads(x) for x in reply.text.splitlines()]
    assert [a["error"] for a in answers] == [None, None, contract.BAD_JSON]


def test_split_job_runs_from_the_code_bundle(opt_ml: Path, tmp_path: Path) -> None:
    _write(tmp_path / "out" / "f.csv.out", OUT_LINES[:2])
    done = run_job(
        opt_ml,
        "batch_split.py",
        "--input",
        str(tmp_path / "out"),
        "--predictions",
        str(tmp_path / "p"),
        "--errors",
        str(tmp_path / "e"),
    )
    assert done.returncode == 0, done.stderr
    assert "1 file(s), 2 row(s): 1 scored, 1 error(s)" in done.stdout


# --- the command -------------------------------------------------------------------------------


def test_mlops_batch_local_reports_counts_and_where_the_files_are(
    model_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app

    lines = [
        _csv_line(f"r{i}", v) for i, v in enumerate(frame.iloc[:4].astype(str).to_numpy().tolist())
    ]
    _write(tmp_path / "in" / "a.csv", [*lines, "r9,1"])
    argv = ["batch", "--local", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
            "--model-dir", str(model_dir)]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "1 file(s), 5 row(s): 4 scored, 1 error(s)" in result.output
    assert "wrong_column_count: 1" in result.output
    failed = CliRunner().invoke(app, [*argv, "--bad-rows", "fail"])
    assert failed.exit_code == 1 and "a.csv line 5:" in failed.output
    assert CliRunner().invoke(app, argv[:1] + argv[2:]).exit_code == 1  # no --local


def test_the_shipped_batch_sample_scores_every_customer(model_dir: Path, tmp_path: Path) -> None:
    """The README's first batch command: inference/samples/batch, 20 customers, no errors."""
    from typer.testing import CliRunner

    from mlops.cli import app

    sample = Path(__file__).resolve().parent.parent / "inference" / "samples" / "batch"
    argv = ["batch", "--local", "--input", str(sample), "--output", str(tmp_path / "out"),
            "--model-dir", str(model_dir)]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "1 file(s), 20 row(s): 20 scored, 0 error(s)" in result.output
    (scored,) = (tmp_path / "out" / "predictions").iterdir()
    ids = [line.split(",")[0] for line in scored.read_text().splitlines()]
    assert ids == [f"customer-{i:04d}" for i in range(1, 21)]
