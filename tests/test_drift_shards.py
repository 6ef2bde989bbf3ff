"""The drift job split into shards and merged: the same report as one pass, exactly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inference.capture import capture_record
from mlops.cli import app
from monitoring import drift, drift_shards, shards, statistics
from monitoring.baseline import load
from monitoring.statistics import DriftState

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"


def record(body: str, when: datetime) -> dict[str, Any]:
    return capture_record(
        request_body=body.encode(),
        request_content_type="text/csv",
        response_body=b'{"predictions": []}',
        response_content_type="application/json",
        when=when,
        event_id="e",
    )


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A two-feature baseline: plan (no/yes, half each), minutes (bins (-inf,10], (10,inf))."""
    folder = tmp_path / "model"
    folder.mkdir()
    baseline = {
        "version": 1,
        "rows": 1000,
        "features": {
            "plan": {"type": "categorical", "frequencies": {"no": 0.5, "yes": 0.5}},
            "minutes": {
                "type": "numeric",
                "histogram": {"edges": [0, 10, 20], "proportions": [0.5, 0.5]},
                "quantiles": {"0.0": 0, "1.0": 20},
            },
        },
    }
    (folder / "baseline.json").write_text(json.dumps(baseline))
    manifest = {"features": {"categorical": ["plan"], "numeric": ["minutes"]}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def write(root: Path, hour: int, lines: list[Any], name: str = "part.jsonl") -> None:
    when = END - timedelta(hours=hour)
    folder = root / ENDPOINT / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    (folder / name).write_text(text)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Four files: rows, malformed lines, an unseen category, and a file with no rows."""
    root = tmp_path / "capture"

    def at(hour: int) -> datetime:
        return END - timedelta(hours=hour, minutes=-5)

    write(root, 1, [record("yes,5", at(1)), record("yes,5", at(1)), "{not json"])
    write(root, 2, [record("no,15", at(2)), record("yes", at(2))])  # wrong_column_count
    write(root, 3, [record("maybe,25", at(3)), record("yes,15", at(3))])
    write(root, 4, ["{not json", record("no,5", at(30))])  # no rows: malformed, outside
    return root


def arguments(capture: Path | str, model: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--capture", str(capture), "--baseline", str(model), "--output", str(output),
        "--end", END.isoformat(), "--window-hours", "6", *extra,
    ]  # fmt: skip


def step_arguments(capture: Path | str, model: Path, output: Path, *extra: str) -> list[str]:
    """A later pipeline step's: no --end, the window comes from the list step."""
    return ["--capture", str(capture), "--baseline", str(model), "--output", str(output), *extra]


def report_of(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "drift.json").read_text())
    document.pop("seconds")
    return document


def summarise_in_process(capture: Path, model: Path, count: int, target: Path) -> None:
    """What N summarise steps write, run here rather than on N instances."""
    options = drift.parse_options(arguments(capture, model, target))
    baseline = drift.load_baseline(options)
    files = drift.list_window(options, drift._store(options), lambda _: None).files
    for i, part in enumerate(shards.partition(files, count)):
        task = drift_shards.ShardTask(options, baseline, part, f"algo-{i + 1}")
        shards.write_summary(str(target), drift_shards.summarise(task))


def test_the_single_pass_counts_what_was_written(
    tmp_path: Path, capture: Path, model: Path
) -> None:
    assert drift.main(arguments(capture, model, tmp_path / "one")) == 0
    report = report_of(tmp_path / "one")
    records = report["records"]
    assert (records["files"], records["lines"], records["used"], records["rows"]) == (4, 9, 5, 5)
    assert records["outside_window"] == 1
    assert records["malformed_by_reason"] == {"bad_json": 2, "wrong_column_count": 1}
    # plan: no 1, yes 3, unseen 1 of 5 rows; minutes: 5, 5 | 15, 15, 25.
    plan, minutes = report["features"]["plan"], report["features"]["minutes"]
    psi_plan = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.6 - 0.5) * math.log(0.6 / 0.5)
    psi_plan += (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert plan["psi"] == pytest.approx(psi_plan, abs=1e-6)
    assert plan["unseen_categories"] == {"maybe": 1}
    psi_minutes = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.6 - 0.5) * math.log(0.6 / 0.5)
    assert minutes["psi"] == pytest.approx(psi_minutes, abs=1e-6)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6])
def test_merged_summaries_equal_the_single_pass(
    tmp_path: Path, capture: Path, model: Path, count: int
) -> None:
    """6 shards of 4 files: two shards read nothing; the shard of hour 4 reads no rows."""
    assert drift.main(arguments(capture, model, tmp_path / "one")) == 0
    summaries = tmp_path / "summaries"
    summarise_in_process(capture, model, count, summaries)
    assert len(list(summaries.glob("summary-algo-*.json"))) == count
    merged = tmp_path / "merged"
    assert drift.main(arguments(capture, model, merged, "--merge-from", str(summaries))) == 0
    assert report_of(merged) == report_of(tmp_path / "one")
    assert (merged / "drift.html").is_file()


def test_summarise_step_reads_its_download_folder(
    tmp_path: Path, capture: Path, model: Path
) -> None:
    """An instance's --capture is its share of the manifest, keys' paths kept; none is fine."""
    out = tmp_path / "summaries"
    argv = arguments(capture, model, tmp_path / "unused", "--summary-to", str(out))
    assert drift.main([*argv, "--shard-id", "algo-1"]) == 0
    argv = arguments(tmp_path / "nothing", model, tmp_path / "unused", "--summary-to", str(out))
    assert drift.main([*argv, "--shard-id", "algo-2"]) == 0
    empty = json.loads((out / "summary-algo-2.json").read_text())
    assert empty["body"]["files"] == 0 and empty["body"]["state"]["rows"] == 0
    merged = tmp_path / "merged"
    assert drift.main(arguments(capture, model, merged, "--merge-from", str(out))) == 0
    assert report_of(merged)["records"]["rows"] == 5


def test_unseen_names_merge_exactly_beyond_the_named_few(
    monkeypatch: pytest.MonkeyPatch, model: Path
) -> None:
    """Only the top names are reported, ties by name; shards keep every count to merge."""
    monkeypatch.setattr(statistics, "MAX_UNSEEN_NAMES", 2)
    baseline = load(str(model))
    first, second, whole = DriftState(baseline), DriftState(baseline), DriftState(baseline)
    import numpy as np

    a = ["zeta", "beta", "zeta"]  # zeta leads here ...
    b = ["beta", "alpha", "alpha", "gamma"]  # ... and ties with alpha and beta overall
    first.update(np.full((3, 1), 5.0), [a])
    second.update(np.full((4, 1), 5.0), [b])
    whole.update(np.full((7, 1), 5.0), [a + b])
    merged = DriftState.from_summary(baseline, json.loads(json.dumps(first.to_summary())))
    merged.merge(DriftState.from_summary(baseline, second.to_summary()))
    rule = statistics.DriftRule()
    plan = {f.name: f for f in merged.results(rule)}["plan"]
    assert plan.unseen == {"alpha": 2, "beta": 2}
    assert merged.results(rule) == whole.results(rule)


def test_the_baseline_copy_loads_back_equal(tmp_path: Path, model: Path) -> None:
    original = load(str(model))
    for name, data in shards.baseline_files(original):
        (tmp_path / name).write_bytes(data)
    copy = load(str(tmp_path))
    assert (copy.features, copy.feature_order, copy.rows) == (
        original.features,
        original.feature_order,
        original.rows,
    )
    assert shards.fingerprint(copy) == shards.fingerprint(original)


def test_a_summary_that_does_not_add_up_is_refused(tmp_path: Path, model: Path) -> None:
    baseline = load(str(model))
    summary = DriftState(baseline).to_summary()
    summary["rows"] = 3
    with pytest.raises(ValueError, match="do not add up"):
        DriftState.from_summary(baseline, summary)
    summary = {**DriftState(baseline).to_summary(), "numeric": {"other": [0, 0]}}
    with pytest.raises(ValueError, match="numeric features"):
        DriftState.from_summary(baseline, summary)


def test_summaries_of_another_window_are_refused(
    tmp_path: Path, capture: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries = tmp_path / "summaries"
    summarise_in_process(capture, model, 2, summaries)
    argv = arguments(capture, model, tmp_path / "m", "--merge-from", str(summaries))
    assert drift.main([*argv, "--window-hours", "5"]) == drift.EXIT_USAGE
    assert "summarises another run" in capsys.readouterr().err
    assert drift.main(arguments(capture, model, tmp_path / "m", "--merge-from", "/nope")) == 2
    assert "no such folder" in capsys.readouterr().err


def test_an_empty_window_in_the_list_step_runs_the_whole_job(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No files: nothing to shard, so the report (status, CaptureRecords=0) is written here."""
    (tmp_path / "capture" / ENDPOINT / "AllTraffic" / "2026").mkdir(parents=True)
    output = tmp_path / "report"
    argv = arguments(tmp_path / "capture", model, output, "--list-to", "s3://b/m.manifest")
    assert drift.main(argv) == drift.EXIT_SILENT
    assert json.loads((output / "drift.json").read_text())["status"] == "no_records"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shards", "0"], "--shards must be 1 to 100, got 0"),
        (["--shards", "101"], "--shards must be 1 to 100, got 101"),
        (["--shards", "2", "--merge-from", "x"], "--shards and --merge-from are different"),
        (["--shard-id", "algo-1"], "--shard-id names a summary: it needs --summary-to"),
        (["--summary-to", "x", "--shard-id", "../up"], "--shard-id '../up'"),
        (["--summary-to", "x", "--window-from", "w.json"], "--window-from sets the window"),
        (["--window-from", "w.json"], "--window-from is for the --summary-to and --merge-from"),
    ],
)
def test_bad_sharding_arguments_exit_2(
    tmp_path: Path,
    capture: Path,
    model: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert drift.main(arguments(capture, model, tmp_path / "out", *extra)) == drift.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_shards_runs_processes_and_matches_one_pass(
    tmp_path: Path, capture: Path, model: Path
) -> None:
    assert drift.main(arguments(capture, model, tmp_path / "one")) == 0
    common = [
        "drift", "--capture", str(capture), "--baseline", str(model),
        "--end", END.isoformat(), "--window-hours", "6",
    ]  # fmt: skip
    result = CliRunner().invoke(app, [*common, "--output", str(tmp_path / "two"), "--shards", "2"])
    assert result.exit_code == 0, result.output
    assert report_of(tmp_path / "two") == report_of(tmp_path / "one")
    bad = CliRunner().invoke(app, [*common, "--shards", "500"])
    assert bad.exit_code == 2
    assert "--shards must be 1 to 100, got 500" in bad.output


# --- monitoring.shards on its own -----------------------------------------------------------


def test_partition_spreads_files_like_sharded_by_key() -> None:
    assert shards.partition(["a", "b", "c", "d", "e"], 2) == [("a", "b", "c"), ("d", "e")]
    assert shards.partition(["a"], 3) == [("a",), (), ()]
    with pytest.raises(shards.ShardError, match="1 to 100, got 0"):
        shards.partition(["a"], 0)


def test_manifest_is_sagemakers_format(tmp_path: Path) -> None:
    files = ["s3://cap/datacapture/ep/v/2026/11/24/11/a.jsonl", "s3://cap/datacapture/ep/b.jsonl"]
    manifest = shards.manifest_for(files, "s3://cap/datacapture")
    assert json.loads(manifest.to_json()) == [
        {"prefix": "s3://cap/datacapture/"},
        "ep/v/2026/11/24/11/a.jsonl",
        "ep/b.jsonl",
    ]
    assert manifest.uris == tuple(files)
    shards.write_manifest(str(tmp_path / "m.manifest"), manifest)
    assert shards.read_manifest(str(tmp_path / "m.manifest")) == manifest
    with pytest.raises(shards.ShardError, match="not below the capture prefix"):
        shards.manifest_for(["s3://other/x.jsonl"], "s3://cap/datacapture/")
    with pytest.raises(shards.ShardError, match="not a manifest"):
        shards.parse_manifest(b'["no prefix"]')


def test_host_id_reads_the_resource_config(tmp_path: Path) -> None:
    config = tmp_path / "resourceconfig.json"
    config.write_text('{"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}')
    assert shards.host_id(config) == "algo-2"
    assert shards.host_id(tmp_path / "missing.json") == "local"
    config.write_text("not json")
    assert shards.host_id(config) == "local"


def test_the_three_steps_on_s3_equal_one_pass(
    tmp_path: Path, capture: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """List -> manifest; each instance downloads its keys (ShardedByS3Key) -> summary; merge."""
    import boto3
    from moto import mock_aws

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket="cap", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        for path in sorted(capture.rglob("*.jsonl")):
            key = f"datacapture/{path.relative_to(capture).as_posix()}"
            s3.put_object(Bucket="cap", Key=key, Body=path.read_bytes())
        prefix, run = "s3://cap/datacapture", "s3://cap/drift/exec-1"
        assert drift.main(arguments(prefix, model, tmp_path / "one")) == 0
        listed = ["--list-to", f"{run}/capture.manifest"]
        assert drift.main(arguments(prefix, model, tmp_path / "x", *listed)) == 0
        manifest = shards.read_manifest(f"{run}/capture.manifest")
        assert manifest.prefix == "s3://cap/datacapture/" and len(manifest.keys) == 4
        window = shards.read_window(f"{run}/window.json")
        assert (window.start, window.end) == (END - timedelta(hours=6), END)
        s3.download_file("cap", "drift/exec-1/window.json", str(tmp_path / "window.json"))
        copy = tmp_path / "baseline-copy"  # the isolated step's baseline input
        copy.mkdir()
        for name in ("baseline.json", "manifest.json"):
            s3.download_file("cap", f"drift/exec-1/baseline/{name}", str(copy / name))
        for i, keys in enumerate(shards.partition(manifest.keys, 2)):
            local = tmp_path / f"algo-{i + 1}"  # the instance's LocalPath
            for key in keys:
                (local / key).parent.mkdir(parents=True, exist_ok=True)
                s3.download_file("cap", f"datacapture/{key}", str(local / key))
            step = ["--summary-to", f"{run}/summaries", "--shard-id", f"algo-{i + 1}"]
            step += ["--window-from", str(tmp_path)]  # the folder holding window.json
            assert drift.main(step_arguments(local, copy, tmp_path / "x", *step)) == 0
        merge = ["--merge-from", f"{run}/summaries", "--window-from", f"{run}/window.json"]
        assert drift.main(step_arguments(prefix, model, tmp_path / "two", *merge)) == 0
        boto3.DEFAULT_SESSION = None
    one, two = report_of(tmp_path / "one"), report_of(tmp_path / "two")
    assert one == two and one["records"]["files"] == 4
