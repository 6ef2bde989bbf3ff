"""The drift job on real capture records: no false alarms, real drift named, bad lines counted."""

from __future__ import annotations

import base64
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from inference.capture import capture_record
from mlops.cli import app
from monitoring import drift
from monitoring.baseline import BaselineError, load
from training import dataset as ds

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"


def record(body: str | bytes, content_type: str, when: datetime) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    return capture_record(
        request_body=raw,
        request_content_type=content_type,
        response_body=b'{"predictions": []}',
        response_content_type="application/json",
        when=when,
        event_id="e",
    )


def requests(frame: pd.DataFrame, batch: int = 3) -> list[tuple[str | bytes, str]]:
    """Rows as request bodies, rotating CSV, JSON instances/records, header CSV and base64."""
    bodies: list[tuple[str | bytes, str]] = []
    for number, start in enumerate(range(0, len(frame), batch)):
        part = frame.iloc[start : start + batch].loc[:, list(ds.FEATURES)]
        kind = number % 5
        if kind == 0:
            bodies.append((part.to_csv(index=False, header=False), "text/csv"))
        elif kind == 1:
            bodies.append((json.dumps({"instances": part.values.tolist()}), "application/json"))
        elif kind == 2:
            records = json.dumps({"records": part.to_dict(orient="records")})
            bodies.append((records, "application/json"))
        elif kind == 3:  # a header naming the features, in another order
            bodies.append((part.iloc[:, ::-1].to_csv(index=False), "text/csv; charset=utf-8"))
        else:  # an unknown content type makes the capture base64; the job decodes it
            bodies.append((part.to_csv(index=False, header=False).encode(), "text/csv"))
    return bodies


def write_capture(
    root: Path,
    lines: list[dict[str, Any] | str],
    when: datetime,
    endpoint: str = ENDPOINT,
    name: str = "part.jsonl",
) -> Path:
    folder = root / endpoint / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def capture_frame(root: Path, frame: pd.DataFrame, end: datetime = END, hours: int = 6) -> None:
    """Spread the frame's requests over the ``hours`` before ``end``."""
    bodies = requests(frame)
    for hour in range(hours):
        when = end - timedelta(hours=hour + 1) + timedelta(minutes=7)
        part = bodies[hour::hours]
        write_capture(root, [record(b, t, when) for b, t in part], when)


def base64_record(body: str, when: datetime) -> dict[str, Any]:
    line = record(body, "text/csv", when)
    endpoint_input = line["captureData"]["endpointInput"]
    endpoint_input["data"] = base64.b64encode(body.encode()).decode()
    endpoint_input["encoding"] = "BASE64"
    return line


def run_job(tmp_path: Path, capture: Path, baseline: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "report"
    args = ["--capture", str(capture), "--baseline", str(baseline), "--output", str(out)]
    assert drift.main([*args, "--end", END.isoformat(), *extra]) == 0
    report: dict[str, Any] = json.loads((out / "drift.json").read_text())
    return report


@pytest.fixture
def shifted(test_rows: pd.DataFrame) -> pd.DataFrame:
    frame = test_rows.copy()
    frame["total_day_minutes"] = frame["total_day_minutes"] + 60
    frame["total_intl_minutes"] = frame["total_intl_minutes"] * 1.6
    rng = np.random.default_rng(3)
    frame["international_plan"] = np.where(rng.random(len(frame)) < 0.5, "yes", "no")
    return frame


def test_held_out_rows_raise_no_alarm(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    capture_frame(tmp_path / "capture", test_rows)
    report = run_job(tmp_path, tmp_path / "capture", model_dir)
    assert report["status"] == "ok"
    assert report["records"]["rows"] == len(test_rows)
    assert report["records"]["malformed"] == 0
    assert report["drifted_features"] == []
    assert set(report["features"]) == set(ds.FEATURES)
    assert report["drift_score"] < 0.2
    # The tests agree with PSI: nothing for the same distribution is wildly significant.
    assert all(f["p_value"] > 1e-4 for f in report["features"].values())


def test_shifted_rescaled_and_reweighted_features_are_named(
    tmp_path: Path, shifted: pd.DataFrame, model_dir: Path
) -> None:
    capture_frame(tmp_path / "capture", shifted)
    report = run_job(tmp_path, tmp_path / "capture", model_dir)
    assert sorted(report["drifted_features"]) == [
        "international_plan",
        "total_day_minutes",
        "total_intl_minutes",
    ]
    for name in report["drifted_features"]:
        assert report["features"][name]["psi"] >= 0.2
        assert report["features"][name]["p_value"] < 0.01
    # The alarm's score: the largest PSI among features whose corrected test rejects.
    features = report["features"].values()
    assert report["drift_score"] == max(f["psi"] for f in features if f["significant"])
    assert report["max_psi"] == max(f["psi"] for f in features)
    html = (tmp_path / "report" / "drift.html").read_text()
    assert all(name in html for name in ds.FEATURES)
    assert "http" not in html  # self-contained page: no network assets


def test_malformed_lines_are_counted_by_reason_and_skipped(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    when = END - timedelta(hours=1)
    good = test_rows.iloc[:4]
    cells = [str(v) for v in good.iloc[0][list(ds.FEATURES)]]

    def csv_with(position: int, value: str) -> str:
        return ",".join([*cells[:position], value, *cells[position + 1 :]])

    broken_b64 = base64_record(",".join(cells), when)
    broken_b64["captureData"]["endpointInput"]["data"] = "***not base64***"
    no_input = {"captureData": {}, "eventMetadata": {"inferenceTime": "2026-11-24T11:00:00Z"}}
    lines: list[dict[str, Any] | str] = [
        record(",".join(cells), "text/csv", when),  # CSV text
        record(json.dumps({"instances": good.iloc[1:2].values.tolist()}), "application/json", when),
        base64_record(good.iloc[2:4].to_csv(index=False, header=False), when),  # 2 rows
        "{not json",
        json.dumps(no_input),
        record(",".join(cells[:-1]), "text/csv", when),
        broken_b64,
        record(csv_with(ds.FEATURES.index("total_day_calls"), "lots"), "text/csv", when),
        record(csv_with(ds.FEATURES.index("state"), ""), "text/csv", when),
        record(json.dumps({"instances": [[1, 2]]}), "application/json", when),
        record(",".join(cells), "application/x-npy", when),
    ]
    write_capture(tmp_path / "capture", lines, when)
    report = run_job(tmp_path, tmp_path / "capture", model_dir)
    records = report["records"]
    assert (records["used"], records["rows"]) == (3, 4)
    assert records["malformed_by_reason"] == {
        "bad_base64": 1,
        "bad_category": 1,
        "bad_json": 1,
        "missing_fields": 1,
        "non_numeric": 1,
        "unsupported_content_type": 1,
        "wrong_column_count": 2,
    }
    assert records["malformed"] == 8


def test_the_window_excludes_records_outside_it(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    row = test_rows.iloc[:1].to_csv(index=False, header=False)
    capture = tmp_path / "capture"
    inside = END - timedelta(minutes=30)
    write_capture(capture, [record(row, "text/csv", inside)] * 2, inside)
    # Same hour folder, but timed before the window starts: read, then excluded.
    early = END - timedelta(hours=2, minutes=30)
    write_capture(capture, [record(row, "text/csv", early)], END - timedelta(hours=2))
    at_end = END  # the window is half-open: [end - N h, end)
    write_capture(capture, [record(row, "text/csv", at_end)], at_end)
    write_capture(
        capture, [record(row, "text/csv", END - timedelta(days=3))] * 5, END - timedelta(days=3)
    )
    report = run_job(tmp_path, capture, model_dir, "--window-hours", "2")
    assert report["records"]["used"] == 2
    assert report["records"]["outside_window"] == 1  # the early record in a window hour
    assert report["records"]["files"] == 2  # the hour at END and days before are not read
    assert report["window"] == {"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T12:00:00Z"}


def _silent_run(
    tmp_path: Path, capture: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, dict[str, Any]]:
    """The job's exit code, its stderr, and the report it wrote anyway."""
    out = tmp_path / "report"
    code = drift.main(
        ["--capture", str(capture), "--baseline", str(model_dir), "--output", str(out),
         "--end", END.isoformat(), *extra],
    )  # fmt: skip
    report: dict[str, Any] = json.loads((out / "drift.json").read_text())
    return code, capsys.readouterr().err, report


def _one_error_line(err: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_the_bucket_root_is_no_capture_layout_and_exits_3(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The layout sits under <bucket>/datacapture/, one level too deep to be found from
    # the bucket: the job used to log "no capture layout", read 0 records and exit 0.
    bucket = tmp_path / "bucket"
    capture_frame(bucket / "datacapture", test_rows.iloc[:30])
    code, err, report = _silent_run(tmp_path, bucket, model_dir, capsys)
    assert code == drift.EXIT_SILENT == 3
    _one_error_line(err)
    assert f"no capture layout under {bucket}" in err
    assert "point --capture at the endpoint's capture folder" in err
    assert report["status"] == "no_capture_layout"
    assert report["records"]["folders"] == report["records"]["used"] == 0


def test_an_hour_folder_is_no_capture_layout_and_exits_3(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_frame(tmp_path / "capture", test_rows.iloc[:30])
    hour = END - timedelta(hours=1)
    folder = tmp_path / "capture" / ENDPOINT / "AllTraffic" / hour.strftime("%Y/%m/%d/%H")
    assert list(folder.glob("*.jsonl"))  # records are right there, but not in the layout
    code, err, report = _silent_run(tmp_path, folder, model_dir, capsys)
    assert code == 3
    _one_error_line(err)
    assert "is a dated folder inside the layout: point --capture at the folder above" in err
    assert report["status"] == "no_capture_layout"


def test_an_empty_window_exits_3_unless_allowed(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A capture layout, but its only traffic is two days older than the window.
    capture_frame(tmp_path / "capture", test_rows.iloc[:30], end=END - timedelta(days=2))
    code, err, report = _silent_run(tmp_path, tmp_path / "capture", model_dir, capsys)
    assert code == 3
    _one_error_line(err)
    assert "0 capture record(s) in the window, fewer than --min-records 1" in err
    assert report["status"] == "no_records"
    assert report["records"]["folders"] == 1
    assert report["drift_score"] is None
    assert "no records in the window" in report["summary"]

    # Where an empty window is expected (a stack without traffic), the caller says so.
    code, err, report = _silent_run(
        tmp_path, tmp_path / "capture", model_dir, capsys, "--min-records", "0"
    )
    assert (code, err, report["status"]) == (0, "", "no_records")


def test_too_few_records_is_silence_too(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_frame(tmp_path / "capture", test_rows.iloc[:30])  # 10 requests
    code, err, report = _silent_run(
        tmp_path, tmp_path / "capture", model_dir, capsys, "--min-records", "11"
    )
    assert code == 3 and "10 capture record(s) in the window, fewer than" in err
    assert report["status"] == "ok"  # the report still compares what there was


def test_the_normal_case_still_exits_0(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture_frame(tmp_path / "capture", test_rows.iloc[:30])
    code, err, report = _silent_run(tmp_path, tmp_path / "capture", model_dir, capsys)
    assert (code, err) == (0, "")
    assert report["status"] == "ok" and report["records"]["used"] == 10


def test_cli_passes_exit_3_through_and_documents_it(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "capture").mkdir()
    result = CliRunner().invoke(
        app,
        ["drift", "--capture", str(tmp_path / "capture"), "--baseline", str(model_dir),
         "--output", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 3
    assert "error: no capture layout under" in result.output
    assert "Traceback" not in result.output
    helped = CliRunner().invoke(app, ["drift", "--help"], terminal_width=200)
    assert "3  silent: no capture layout under --capture" in helped.output
    assert "--min-records" in helped.output
    assert "3 silent: no capture layout" in drift.parser().format_help()


def test_baseline_loads_from_file_dir_and_archive(tmp_path: Path, model_dir: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("baseline.json", "manifest.json"):
            tar.add(model_dir / name, arcname=name)
    loaded = [load(str(p)) for p in (model_dir / "baseline.json", model_dir, archive)]
    assert {b.feature_order for b in loaded} == {ds.FEATURES}
    assert loaded[0].features == loaded[1].features == loaded[2].features


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("{", "not valid JSON"),
        ('{"version": 9, "features": {}}', "version 9"),
        ('{"version": 1, "features": {"x": {"type": "numeric"}}}', "feature 'x' is malformed"),
    ],
)
def test_bad_baselines_are_caller_errors(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        load(str(path))
    (tmp_path / "capture").mkdir()
    args = ["--capture", str(tmp_path / "capture"), "--baseline", str(path)]
    assert drift.main([*args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "extra",
    [
        ["--window-hours", "0"], ["--end", "yesterday"], ["--publish"], ["--ks-alpha", "2"],
        ["--min-records", "-1"],
    ],
)  # fmt: skip
def test_bad_arguments_exit_2(
    tmp_path: Path, model_dir: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--capture", str(tmp_path), "--baseline", str(model_dir), *extra]
    assert drift.main(args) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_runs_on_a_local_folder(
    tmp_path: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    capture_frame(tmp_path / "capture", test_rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["drift", "--capture", str(tmp_path / "capture"), "--baseline", str(model_dir),
         "--output", str(out), "--end", END.isoformat()],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "750 rows" in result.output and "drifted features: none" in result.output
    assert json.loads((out / "drift.json").read_text())["records"]["rows"] == 750


def test_cli_bad_baseline_exits_2_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["drift", "--capture", str(tmp_path), "--baseline", str(tmp_path / "nope.json")]
    )
    assert result.exit_code == 2
    assert "error:" in result.output and "nope.json" in result.output
    assert "Traceback" not in result.output


def test_the_bundle_runs_the_drift_job(
    tmp_path: Path, opt_ml: Path, test_rows: pd.DataFrame, model_dir: Path
) -> None:
    import subprocess
    import sys

    capture_frame(tmp_path / "capture", test_rows.iloc[:50])
    done = subprocess.run(
        [sys.executable, str(opt_ml / "code" / "drift.py"), "--capture", str(tmp_path / "capture"),
         "--baseline", str(model_dir), "--output", str(tmp_path / "out"), "--end", END.isoformat()],
        cwd=opt_ml / "code", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "read 50 records" in done.stdout or "50 rows" in done.stdout


@pytest.mark.parametrize("flag", ["--capture", "--baseline", "--output"])
def test_an_s3_uri_without_a_bucket_is_a_usage_error(
    tmp_path: Path, model_dir: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "capture").mkdir()
    args = {
        "--capture": str(tmp_path / "capture"),
        "--baseline": str(model_dir),
        "--output": str(tmp_path / "out"),
    }
    args[flag] = "s3:///no-bucket/"
    assert drift.main([item for pair in args.items() for item in pair]) == 2
    err = capsys.readouterr().err
    assert "has no bucket" in err and "Traceback" not in err
