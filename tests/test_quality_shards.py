"""The quality job sharded: each shard's summary merged gives one pass's report exactly, the
join's rules (duplicates, orphans) hold across shards, and the modes' errors are one line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from monitoring import (
    ground_truth,
    join,
    quality,
    quality_metrics,
    quality_shards,
    quality_summary,
    shards,
)
from monitoring.quality_report import QualityReport
from training import baseline
from training import dataset as ds
from training.metrics import binary_classification_metrics

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "churn-prod"
HOURS = 3
FILES_PER_HOUR = 2
RECORDS_PER_FILE = 40


# --- a window: several files, every kind of mismatch -----------------------------------------


def _capture(row: str, scores: Sequence[float], key: str | None, event: str, when: datetime) -> str:
    """One request of len(scores) rows (``row`` repeated), answered as the handler does."""
    answer = "".join(f"{'yes' if s >= 0.5 else 'no'},{1 - s:.6f},{s:.6f}\n" for s in scores)
    metadata = {"eventId": event, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if key is not None:
        metadata["inferenceId"] = key
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                  "data": (row + "\n") * len(scores), "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                   "data": answer, "encoding": "CSV"},
            },
            "eventMetadata": metadata,
            "eventVersion": "0",
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three hours of capture in two files each, labels an hour later, and the baseline.

    Besides ordinary records: malformed lines, records without a label, orphan labels,
    corrected (duplicate) labels, a request whose label has too many rows, a record from
    before the window, and the id ``dup`` captured in the first file and in the last, so
    that any split into shards puts its copies apart.
    """
    root = tmp_path_factory.mktemp("window")
    frame = ds.load_shipped()
    features = frame.loc[:, list(ds.FEATURES)]
    (root / "baseline.json").write_text(json.dumps(baseline.compute(features)))
    cells = [",".join(str(v) for v in r) for r in features.itertuples(index=False, name=None)]
    truth = (frame[ds.TARGET] == ds.POSITIVE_LABEL).to_numpy(np.int64)
    rng = np.random.default_rng(5)
    held_out = rng.integers(0, len(frame), 400)
    evaluation = binary_classification_metrics(
        truth[held_out], np.clip(truth[held_out] * 0.6 + rng.random(400) * 0.4, 0, 1)
    )
    (root / "evaluation.json").write_text(json.dumps(evaluation))

    labels: list[str] = []
    number = 0
    for hour in range(HOURS):
        when = END - timedelta(hours=HOURS - hour)
        folder = root / "capture" / ENDPOINT / "AllTraffic" / when.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True)
        for part in range(FILES_PER_HOUR):
            lines = []
            for _ in range(RECORDS_PER_FILE):
                number += 1
                pick = int(rng.integers(0, len(frame)))
                size = 1 + number % 3
                scores = np.clip(truth[pick] * 0.5 + rng.random(size) * 0.5, 0, 1)
                key = None if number % 4 == 0 else f"req-{number}"
                event = f"event-{number}"
                lines.append(_capture(cells[pick], scores.tolist(), key, event, when))
                if number % 10 == 3:
                    continue  # unlabelled
                values = [int(truth[pick]) if rng.random() < 0.8 else 1 - int(truth[pick])]
                values *= size
                if number % 37 == 0:
                    values.append(1)  # one row too many
                labels.append(ground_truth.to_line(key or event, values))
                if number % 29 == 0:
                    labels.append(ground_truth.to_line(key or event, [1 - values[0]] * size))
            lines.insert(5, '{"captureData": ')  # malformed
            if hour == 0 and part == 0:
                lines.append(_capture(cells[0], [0.9], "dup", "event-dup-1", when))
                lines.append(_capture(cells[0], [0.4], "old", "event-old", when - timedelta(1)))
            if hour == HOURS - 1 and part == FILES_PER_HOUR - 1:
                lines.append(_capture(cells[1], [0.8], "dup", "event-dup-2", when))
            (folder / f"part-{part}.jsonl").write_text("\n".join(lines) + "\n")
    labels += [ground_truth.to_line("dup", [1]), ground_truth.to_line("orphan-1", [0])]
    labels += ["{oops", ground_truth.to_line("orphan-2", [1, 1])]
    for hour, chunk in enumerate((labels[::2], labels[1::2])):
        folder = Path(ground_truth.hour_folder(str(root / "gt"), END + timedelta(hours=hour)))
        folder.mkdir(parents=True)
        (folder / "labels.jsonl").write_text("\n".join(chunk) + "\n")
    return root


def _argv(root: Path, output: str, *extra: str, facets: bool = True) -> list[str]:
    bias = (
        ["--baseline", str(root / "baseline.json"), "--facet", "international_plan=yes",
         "--facet", "total_day_minutes=200", "--bias-limit", "DPPL=0.05", "--bias-limit", "CI=0.1"]
        if facets else []
    )  # fmt: skip
    return [
        "--capture", str(root / "capture"), "--ground-truth", str(root / "gt"),
        "--evaluation", str(root / "evaluation.json"), "--output", str(root / output),
        "--end", END.isoformat(), "--window-hours", str(HOURS), "--label-delay-hours", "3",
        "--min-labels", "50", *bias, *extra,
    ]  # fmt: skip


def _files(folder: Path) -> dict[str, Any]:
    """Every report file; quality.json without its run time."""
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            found[name] = (
                json.loads(path.read_text()) if path.suffix == ".json" else path.read_text()
            )
    found["quality.json"].pop("seconds")
    return found


def _report(argv: list[str]) -> QualityReport:
    return quality.execute(quality.parse_options(argv), log=lambda _: None)


@pytest.fixture(scope="module")
def single(window: Path) -> tuple[QualityReport, dict[str, Any]]:
    report = _report(_argv(window, "single"))
    return report, _files(window / "single")


def _same_as_single(
    single: tuple[QualityReport, dict[str, Any]],
    report: QualityReport,
    folder: Path,
) -> None:
    expected_report, expected_files = single
    assert _files(folder) == expected_files
    when = datetime(2026, 11, 25, tzinfo=UTC)
    assert quality_metrics.datums(report, ENDPOINT, when) == quality_metrics.datums(
        expected_report, ENDPOINT, when
    )


# --- merged equals single-pass -------------------------------------------------------------------


def test_the_single_pass_window_holds_every_case(
    single: tuple[QualityReport, dict[str, Any]],
) -> None:
    """The fixture's counts, by hand: 240 records in 6 files, each with one malformed line."""
    _, files = single
    report = files["quality.json"]
    c = report["counts"]
    assert report["files"] == {"capture": 6, "labels": 2, "variant_folders": 1}
    assert c["capture_lines"] == 240 + 6 + 3
    assert c["malformed_records_by_reason"] == {"bad_json": 6}
    assert c["outside_window"] == 1
    assert c["capture_records"] == 242
    assert c["duplicate_records"] == 2  # "dup", in the first file and the last
    assert c["unlabelled_records"] == 24  # numbers 3, 13, ..., 233
    assert c["label_row_mismatch"] == 6  # numbers 37, 74, ... 222 (none ends in 3)
    assert c["labelled_records"] == 242 - 2 - 24 - 6
    assert c["duplicate_labels"] == 240 // 29 - 1  # 29, 58, ..., 232 less 203 (ends in 3)
    assert c["orphan_labels"] == 2
    assert c["malformed_labels"] == 1
    assert report["status"] == "ok" and report["bias"]["status"] == "measured"
    # The seeded bootstrap ran (a p-value under 1), so the merge must reproduce its draws.
    assert any(check["p_value"] < 1 for check in report["bias"]["checks"])


def test_local_shards_report_exactly_what_one_pass_does(
    window: Path, single: tuple[QualityReport, dict[str, Any]]
) -> None:
    """8 shards of 6 files: six of one file, two of none (processes: as many as cores)."""
    output = "shards-8"
    report = _report(_argv(window, output, "--shards", "8"))
    _same_as_single(single, report, window / output)


def _instance_folders(window: Path, groups: Sequence[Sequence[int]], name: str) -> list[Path]:
    """Each instance's download of its ShardedByS3Key share: the files, same layout."""
    files = sorted((window / "capture").rglob("*.jsonl"))
    folders = []
    for n, group in enumerate(groups):
        folder = window / name / f"instance-{n}"
        folder.mkdir(parents=True)
        for index in group:
            target = folder / files[index].relative_to(window / "capture")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[index].read_bytes())
        folders.append(folder)
    return folders


def test_summaries_written_by_instances_merge_into_one_pass(
    window: Path, single: tuple[QualityReport, dict[str, Any]]
) -> None:
    """Files dealt out of order (as ShardedByS3Key may); one instance's download is empty,
    another's was not even made."""
    folders = _instance_folders(window, [[5, 0, 2], [], [1, 3, 4]], "dealt")
    folders.append(window / "dealt" / "never-downloaded")
    summaries = window / "summaries"
    for n, folder in enumerate(folders):
        argv = _argv(window, "unused", "--summary-to", str(summaries), "--shard-id", f"algo-{n}")
        argv[argv.index("--capture") + 1] = str(folder)
        assert quality.main(argv) == quality.EXIT_OK
    assert sorted(p.name for p in summaries.iterdir()) == [
        f"summary-algo-{n}.{ext}" for n in range(4) for ext in ("json", "npz")
    ]
    report = _report(_argv(window, "merged", "--merge-from", str(summaries)))
    _same_as_single(single, report, window / "merged")


def test_a_duplicate_id_in_two_shards_is_left_out_and_labels_count_once(window: Path) -> None:
    """Each shard alone sees ``dup`` once and labelled; merged, both copies are duplicates.
    Every shard reads all labels, yet orphans and duplicate labels are counted once."""
    folders = _instance_folders(window, [[0], [5]], "apart")
    labels = tuple(str(p) for p in sorted((window / "gt").rglob("*.jsonl")))
    parts = []
    for n, folder in enumerate(folders):
        options = quality.parse_options(_with_capture(_argv(window, "-", facets=False), folder))
        capture = tuple(str(p) for p in sorted(folder.rglob("*.jsonl")))
        task = quality_shards.ShardTask(options, f"s{n}", capture, labels, (), ())
        parts.append(quality_shards.summarise(task))
    dup = join.stable_hash("dup")
    for part in parts:
        alone = join.complete(part.matches, part.capture, quality_summary.label_index(part.context))
        assert (part.matches.keys == dup).sum() == 1
        assert alone.counts.duplicate_records == 0
    merged = quality_summary.merge(parts)
    joined = join.complete(merged.matches, merged.capture, merged.labels)
    c = joined.counts
    assert c.duplicate_records == 2
    assert c.labelled_records + c.unlabelled_records + c.label_row_mismatch == 40 * 2 + 1 - 2 + 1
    # 84 readable labels' ids, once each: the 2 orphans and the labels of the other 4 files.
    assert c.duplicate_labels == 240 // 29 - 1
    claimed = len(np.unique(merged.matches.keys[merged.matches.found]))
    assert c.orphan_labels == merged.labels.unique_keys - claimed


def _with_capture(argv: list[str], folder: Path) -> list[str]:
    argv = list(argv)
    argv[argv.index("--capture") + 1] = str(folder)
    return argv


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--summary-to", "x", "--merge-from", "y"], "--summary-to and --merge-from are different"),
        (["--shards", "2", "--merge-from", "y"], "--shards and --merge-from are different modes"),
        (["--list-to", "s3://b/m", "--summary-to", "x"], "--list-to and --summary-to"),
        (["--shard-id", "algo-1"], "--shard-id names a summary: it needs --summary-to"),
        (["--labels-list-to", "s3://b/l"], "--labels-list-to names a manifest"),
        (["--summary-to", "x", "--publish", "--namespace", "N"], "--summary-to publishes nothing"),
        (["--window-from", "w.json"], "--window-from is for the --summary-to and --merge-from"),
        (["--merge-from", "m", "--window-from", "w.json"], "--window-from sets the window: leave"),
        (["--shards", "0"], "--shards must be 1 to 100, got 0"),
        (["--shards", "101"], "--shards must be 1 to 100, got 101"),
        (["--summary-to", "x", "--shard-id", "../up"], "--shard-id '../up': use letters"),
        (["--list-to", "s3://b/m.json"], "--list-to lists S3 for SageMaker: --capture must be"),
        (["--merge-from", "nowhere"], "--merge-from nowhere: no such folder"),
    ],
)
def test_mode_errors_are_one_line_and_exit_2(
    window: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    argv = _with_capture(_argv(window, "errors", *extra, facets=False), window / "capture")
    if "nowhere" in extra:
        argv[argv.index("nowhere")] = str(window / "nowhere")
        says = f"--merge-from {window / 'nowhere'}: no such folder"
    assert quality.main(argv) == quality.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1


def test_shards_must_be_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        quality.parse_options(["--capture", "c", "--ground-truth", "g", "--shards", "two"])
    assert exit_.value.code == quality.EXIT_USAGE
    assert "--shards: invalid int value: 'two'" in capsys.readouterr().err


def test_merge_refuses_summaries_of_another_window(
    window: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries = window / "summaries-other"
    argv = _argv(window, "unused", "--summary-to", str(summaries), "--shard-id", "a", facets=False)
    assert quality.main(argv) == quality.EXIT_OK
    later = _argv(window, "other", "--merge-from", str(summaries), facets=False)
    later[later.index("--end") + 1] = (END + timedelta(hours=1)).isoformat()
    assert quality.main(later) == quality.EXIT_USAGE
    err = capsys.readouterr().err
    assert (
        "shard 'a' summarised another run than this merge's (end, labels_until, start differ)"
        in err
    )


def test_merge_refuses_a_file_read_by_two_shards_and_tampered_arrays(
    window: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = _instance_folders(window, [[0, 1], [1]], "overlap")
    target = window / "summaries-overlap"
    for n, folder in enumerate(folders):
        argv = _with_capture(
            _argv(
                window, "unused", "--summary-to", str(target), "--shard-id", f"i{n}", facets=False
            ),
            folder,
        )
        assert quality.main(argv) == quality.EXIT_OK
    merge = _argv(window, "overlap", "--merge-from", str(target), facets=False)
    assert quality.main(merge) == quality.EXIT_USAGE
    assert "was summarised by shards 'i0' and 'i1'" in capsys.readouterr().err
    (target / "summary-i1.npz").write_bytes(b"not the arrays")
    assert quality.main(merge) == quality.EXIT_USAGE
    err = capsys.readouterr().err
    assert "summary 'i1': summary-i1.npz is not the file it was written with" in err


def test_the_labels_manifest_sits_next_to_the_captures() -> None:
    options = quality.parse_options(
        ["--capture", "s3://b/c", "--ground-truth", "s3://b/g", "--evaluation", "e.json",
         "--list-to", "s3://b/run/7/capture.manifest"]
    )  # fmt: skip
    assert quality_shards.labels_manifest_uri(options) == "s3://b/run/7/labels-capture.manifest"
    assert shards.summary_name("algo-2") == "summary-algo-2.json"


# --- the three steps on S3 (moto) ------------------------------------------------------------


def _upload(s3: Any, local: Path, bucket: str, prefix: str) -> None:
    for path in sorted(local.rglob("*.jsonl")):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(local).as_posix()}",
                      Body=path.read_bytes())  # fmt: skip


def test_list_summarise_and_merge_on_s3(
    window: Path, single: tuple[QualityReport, dict[str, Any]]
) -> None:
    """The list step's manifests name the window's files below the prefixes (late labels
    left out); instances summarise their shares into one prefix; the merge reads them."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        _upload(s3, window / "capture", "data", "capture")
        _upload(s3, window / "gt", "data", "gt")
        late = Path(ground_truth.hour_folder("gt", END + timedelta(hours=3))) / "late.jsonl"
        s3.put_object(Bucket="data", Key=late.as_posix(), Body=b"{}\n")
        remote = ["--capture", "s3://data/capture", "--ground-truth", "s3://data/gt",
                  "--region", "us-east-1"]  # fmt: skip
        argv = _argv(window, "-", "--list-to", "s3://data/run/capture.manifest", facets=False)
        argv += ["--baseline", str(window / "baseline.json")]
        assert quality.main(_replace(argv, remote)) == quality.EXIT_OK
        # The network-isolated summarise step's copy of the served model's baseline.
        copied = s3.list_objects_v2(Bucket="data", Prefix="run/baseline/")["Contents"]
        assert sorted(o["Key"] for o in copied) == [
            "run/baseline/baseline.json",
            "run/baseline/manifest.json",
        ]

        def manifest(key: str) -> Any:
            return json.loads(s3.get_object(Bucket="data", Key=key)["Body"].read())

        captured = manifest("run/capture.manifest")
        hours = [(END - timedelta(hours=HOURS - h)).strftime("%Y/%m/%d/%H") for h in range(3)]
        assert captured == [{"prefix": "s3://data/capture/"}] + [
            f"{ENDPOINT}/AllTraffic/{hour}/part-{part}.jsonl" for hour in hours for part in (0, 1)
        ]
        assert manifest("run/labels-capture.manifest") == [{"prefix": "s3://data/gt/"}] + [
            f"{(END + timedelta(hours=h)):%Y/%m/%d/%H}/labels.jsonl" for h in (0, 1)
        ]

        assert manifest("run/window.json") == {
            "start": (END - timedelta(hours=HOURS)).isoformat(),
            "end": END.isoformat(),
        }

        # The later steps take the list step's window, not --end.
        chosen = ["--window-from", "s3://data/run/window.json", "--region", "us-east-1"]
        for n, folder in enumerate(_instance_folders(window, [[4, 1], [0, 2, 3, 5]], "s3")):
            argv = _argv(window, "-", "--summary-to", "s3://data/run/summaries/", facets=False)
            argv = _replace(_without_end(_with_capture(argv, folder)), chosen)
            assert quality.main([*argv, "--shard-id", f"algo-{n + 1}"]) == quality.EXIT_OK
        merge = _argv(window, "merged-s3", "--merge-from", "s3://data/run/summaries", facets=False)
        report = _report(_replace(_without_end(merge), chosen))
    expected = _report(_argv(window, "single-plain", facets=False))
    assert report.as_dict() | {"seconds": 0} == expected.as_dict() | {"seconds": 0}


def _without_end(argv: list[str]) -> list[str]:
    at = argv.index("--end")
    return argv[:at] + argv[at + 2 :]


def test_a_window_with_no_label_file_is_judged_by_the_list_step(
    window: Path, tmp_path: Path
) -> None:
    """Nothing to shard (and a manifest may not be empty): the whole job runs, silent."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        _upload(s3, window / "capture", "data", "capture")
        argv = _argv(window, "-", "--list-to", "s3://data/run/capture.manifest", facets=False)
        argv = _replace(argv, ["--capture", "s3://data/capture", "--ground-truth",
                               "s3://data/gt", "--region", "us-east-1",
                               "--output", str(tmp_path / "out")])  # fmt: skip
        assert quality.main(argv) == quality.EXIT_SILENT
        assert "Contents" not in s3.list_objects_v2(Bucket="data", Prefix="run/")
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert report["counts"]["capture_records"] == 242 and report["status"] == "no_labels"


def _replace(argv: list[str], pairs: list[str]) -> list[str]:
    """``argv`` with each flag of ``pairs`` set to its value there."""
    argv = list(argv)
    for flag, value in zip(pairs[::2], pairs[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


def test_mlops_quality_passes_shards_to_the_job(
    window: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app

    common = ["quality", "--capture", str(window / "capture"), "--ground-truth",
              str(window / "gt"), "--evaluation", str(window / "evaluation.json"),
              "--baseline", str(window / "baseline.json"), "--end", END.isoformat()]  # fmt: skip
    refused = CliRunner().invoke(app, [*common, "--shards", "0"])
    assert refused.exit_code == quality.EXIT_USAGE
    assert "--shards must be 1 to 100, got 0" in refused.output
    seen: list[list[str]] = []

    def main(argv: list[str], progress: object = None) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(quality, "main", main)
    assert CliRunner().invoke(app, [*common, "--shards", "4"]).exit_code == 0
    assert seen[0][seen[0].index("--shards") + 1] == "4"


def test_now_gives_every_step_one_window(capsys: pytest.CaptureFixture[str]) -> None:
    """A pipeline's steps start minutes apart: --now (its execution's start) fixes the end."""
    common = ["--capture", "c", "--ground-truth", "g", "--evaluation", "e.json"]
    options = quality.parse_options(
        [*common, "--now", "2026-11-24T12:00:00.123Z", "--label-delay-hours", "6"]
    )
    assert options.end == datetime(2026, 11, 24, 6, 0, 0, 123000, tzinfo=UTC)
    argv = [*common, "--now", "2026-11-24T12:00:00Z", "--end", "2026-11-24T00:00:00Z"]
    assert quality.main(argv) == quality.EXIT_USAGE
    assert "--end and --now both set the window's end: pass one" in capsys.readouterr().err
