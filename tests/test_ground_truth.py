"""Ground truth in SageMaker's format, labels files, captured answers, and the statistics the
quality job uses, each checked against a hand-computed value."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inference import handler
from monitoring import ground_truth, labels_file
from monitoring import quality_stats as stats
from monitoring.bias_drift import bias_metrics, group_counts
from monitoring.ground_truth import GroundTruth, LabelError, Vocabulary
from monitoring.predictions import OutputError, OutputReader
from training import bias
from training import dataset as ds

# The record from AWS's docs, "Ingest Ground Truth labels and merge them with predictions".
DOCS_EXAMPLE = (
    '{"groundTruthData": {"data": "1", "encoding": "CSV"}, '
    '"eventMetadata": {"eventId": "aaaa-bbbb-cccc"}, "eventVersion": "0"}'
)
# Clarify's bias monitor example for JSON endpoints (aws/amazon-sagemaker-examples,
# sm-clarify_model_bias_monitor_for_endpoint_json): one line per request of several rows.
CLARIFY_JSON_EXAMPLE = json.dumps(
    {
        "groundTruthData": {
            "data": json.dumps({"instances": [{"label": 0}, {"label": 1}, {"label": 0}]}),
            "encoding": "JSON",
        },
        "eventMetadata": {"eventId": "7"},
        "eventVersion": "0",
    }
)


# --- the ground-truth format ------------------------------------------------------------------


def test_the_documented_record_parses() -> None:
    assert ground_truth.parse(DOCS_EXAMPLE) == GroundTruth("aaaa-bbbb-cccc", (1,))


def test_clarify_json_instances_give_one_label_per_row() -> None:
    assert ground_truth.parse(CLARIFY_JSON_EXAMPLE) == GroundTruth("7", (0, 1, 0))


@pytest.mark.parametrize(
    ("data", "encoding", "labels"),
    [
        ("1\n0\n1", "CSV", (1, 0, 1)),
        ("yes", "CSV", (1,)),
        (" no \n", "csv", (0,)),
        (base64.b64encode(b"0\n1").decode(), "BASE64", (0, 1)),
        ("true", "JSON", (1,)),
        ("[1, 0]", "JSON", (1, 0)),
        ('{"label": "no"}', "JSON", (0,)),
        ("1.0", "JSON", (1,)),
    ],
)
def test_every_encoding_reads(data: str, encoding: str, labels: tuple[int, ...]) -> None:
    line = json.dumps(
        {
            "groundTruthData": {"data": data, "encoding": encoding},
            "eventMetadata": {"eventId": "x"},
            "eventVersion": "0",
        }
    )
    assert ground_truth.parse(line).labels == labels


def test_written_records_have_the_documented_shape_and_read_back() -> None:
    assert ground_truth.to_record("aaaa-bbbb-cccc", [1]) == json.loads(DOCS_EXAMPLE)
    line = ground_truth.to_line("req-1", [1, 0, 0])
    assert json.loads(line)["groundTruthData"] == {"data": "1\n0\n0", "encoding": "CSV"}
    assert ground_truth.parse(line) == GroundTruth("req-1", (1, 0, 0))
    with pytest.raises(ValueError, match="labels must be 1 or 0"):
        ground_truth.to_record("req-1", [2])
    with pytest.raises(LabelError):
        ground_truth.to_record(" padded", [1])


def _line(**changes: Any) -> str:
    record = json.loads(DOCS_EXAMPLE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = record
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(record)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"groundTruthData": ', "bad_json"),
        ("[1, 2]", "missing_fields"),
        (_line(eventMetadata=None), "missing_fields"),
        (_line(groundTruthData__encoding=None), "missing_fields"),
        (_line(eventVersion="1"), "unknown_version"),
        (_line(eventVersion=None), "unknown_version"),
        (_line(eventMetadata__eventId=""), "bad_event_id"),
        (_line(eventMetadata__eventId="x" * 65), "bad_event_id"),
        (_line(eventMetadata__eventId=7), "bad_event_id"),
        (_line(groundTruthData__encoding="XML"), "unknown_encoding"),
        (_line(groundTruthData__encoding="BASE64", groundTruthData__data="!!"), "bad_base64"),
        (_line(groundTruthData__data="2"), "bad_label"),
        (_line(groundTruthData__data="maybe"), "bad_label"),
        (_line(groundTruthData__data="1,0"), "bad_label"),
        (_line(groundTruthData__data=""), "empty_label"),
        (_line(groundTruthData__encoding="JSON", groundTruthData__data="{"), "bad_json_label"),
        (_line(groundTruthData__encoding="JSON", groundTruthData__data='{"y": 1}'), "bad_label"),
    ],
)
def test_each_malformed_line_names_its_reason(line: str, reason: str) -> None:
    with pytest.raises(LabelError) as caught:
        ground_truth.parse(line)
    assert caught.value.reason == reason


def test_the_vocabulary_follows_the_dataset_names() -> None:
    custom = Vocabulary(positive="churned", negative="stayed")
    assert custom.values(["churned", "STAYED", "1", "false"]) == (1, 0, 1, 0)
    with pytest.raises(LabelError, match="use 1/0, true/false or churned/stayed"):
        custom.value("yes")


def test_hour_folder_is_the_collection_hour_in_utc() -> None:
    from datetime import timedelta, timezone

    collected = datetime(2026, 11, 24, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert ground_truth.hour_folder("s3://b/groundtruth/ep/", collected) == (
        "s3://b/groundtruth/ep/2026/11/23/23"
    )


# --- labels files -------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_csv_labels_file_reads_with_multi_row_requests(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels.csv", 'id,label,note\nreq-1,1,x\nreq-2,no,\nreq-3,"1,0,1",\n')
    checked = labels_file.read(path)
    assert checked.records == (
        GroundTruth("req-1", (1,)),
        GroundTruth("req-2", (0,)),
        GroundTruth("req-3", (1, 0, 1)),
    )
    assert checked.rows == 5
    lines = checked.jsonl().decode().splitlines()
    assert [ground_truth.parse(line) for line in lines] == list(checked.records)


def test_a_jsonl_file_in_ground_truth_format_reads(tmp_path: Path) -> None:
    path = _write(tmp_path, "gt.jsonl", DOCS_EXAMPLE + "\n\n" + CLARIFY_JSON_EXAMPLE + "\n")
    assert labels_file.read(path).records == (
        GroundTruth("aaaa-bbbb-cccc", (1,)),
        GroundTruth("7", (0, 1, 0)),
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "the file is empty"),
        ("header.csv", "id,label\n", "no labels in the file"),
        ("missing.csv", "id,outcome\nreq-1,1\n", "the header has no label column"),
        ("ids.csv", "request,label\nreq-1,1\n", "the header has no id column"),
        (
            "bad.csv",
            "id,label\nreq-1,1\nreq-2,maybe\nreq-3,\n,1\nreq-1,0\nreq-6,1,extra\n",
            "5 bad line(s), nothing uploaded: line 3: label 'maybe' is not binary",
        ),
        ("bad.jsonl", DOCS_EXAMPLE + "\n{oops\n", "1 bad line(s), nothing uploaded: line 2"),
    ],
)
def test_a_bad_labels_file_is_refused_in_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(labels_file.LabelFileError) as caught:
        labels_file.read(_write(tmp_path, name, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_bad_line_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "id,label\nreq-1,1\nreq-2,maybe\nreq-3,\n,1\nreq-1,0\n")
    with pytest.raises(labels_file.LabelFileError) as caught:
        labels_file.read(path)
    message = str(caught.value)
    assert "line 3: label 'maybe'" in message
    assert "line 4: no label" in message
    assert "line 5: event id '' must be" in message
    assert "line 6: id 'req-1' again (first on line 2)" in message


def test_the_upload_target_is_the_hour_folder_named_by_content() -> None:
    at = datetime(2026, 11, 24, 10, 59, tzinfo=UTC)
    first = labels_file.target("s3://b/groundtruth/ep/", at, b"a")
    assert first.startswith("s3://b/groundtruth/ep/2026/11/24/10/labels-")
    assert first.endswith(".jsonl")
    assert labels_file.target("s3://b/groundtruth/ep/", at, b"a") == first
    assert labels_file.target("s3://b/groundtruth/ep/", at, b"b") != first


# --- captured answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/csv", "application/json"])
def test_the_handlers_answers_read_as_its_positive_probabilities(
    serving_model: Any, test_rows: pd.DataFrame, accept: str
) -> None:
    rows = test_rows.iloc[:7]
    body = rows.to_csv(index=False).encode()
    answer, content_type = handler.transform(serving_model, body, "text/csv", accept)
    encoding = "CSV" if content_type == "text/csv" else "JSON"
    output = {"observedContentType": content_type, "mode": "OUTPUT", "data": answer,
              "encoding": encoding}  # fmt: skip
    expected = serving_model.pipeline.predict_proba(rows)[:, 1]
    assert OutputReader().scores(output) == pytest.approx(expected, abs=1e-6)
    encoded = output | {"data": base64.b64encode(answer.encode()).decode(), "encoding": "BASE64"}
    assert OutputReader().scores(encoded) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("content_type", "data", "scores"),
    [
        ("text/csv", "0.25\n0.75\n", [0.25, 0.75]),
        ("text/csv", "yes\nno\n", [1.0, 0.0]),
        ("application/json", '{"predictions": [{"score": 0.9, "predicted_label": 1}]}', [0.9]),
        ("application/json", '{"predictions": [{"label": "no"}, 0.3]}', [0.0, 0.3]),
        ("application/json", "[0.1, 0.2]", [0.1, 0.2]),
    ],
)
def test_other_answer_shapes_read(content_type: str, data: str, scores: list[float]) -> None:
    output = {"observedContentType": content_type, "data": data, "encoding": "CSV"}
    assert OutputReader().scores(output) == scores


CSV, JSON = "text/csv", "application/json"


@pytest.mark.parametrize(
    ("content_type", "data", "encoding", "reason"),
    [
        (CSV, None, "CSV", "missing_output"),
        (CSV, "x", "XML", "unknown_output_encoding"),
        ("image/png", "x", "CSV", "unsupported_output_type"),
        (CSV, "no,0.9,1.7", "CSV", "bad_score"),
        (CSV, "no,0.9", "CSV", "bad_output_row"),
        (CSV, "\n", "CSV", "empty_output"),
        (JSON, "{", "JSON", "bad_output_json"),
        (JSON, '{"p": 1}', "JSON", "bad_output_shape"),
        (JSON, '[{"probabilities": {"a": 1}}]', "JSON", "unknown_positive_label"),
        (CSV, "%%", "BASE64", "bad_output_base64"),
    ],
)
def test_an_unreadable_answer_names_its_reason(
    content_type: str, data: str | None, encoding: str, reason: str
) -> None:
    output = {"observedContentType": content_type, "encoding": encoding}
    if data is not None:
        output["data"] = data
    with pytest.raises(OutputError) as caught:
        OutputReader().scores(output)
    assert caught.value.reason == reason


# --- statistics, by hand ------------------------------------------------------------------------


def test_delong_on_a_tiny_example() -> None:
    # Positives 0.9, 0.4; negatives 0.5, 0.3, 0.1: 5 of 6 pairs ordered, AUC 5/6.
    # Placements: positives 1, 2/3 (variance 1/18); negatives 1/2, 1, 1 (variance 1/12);
    # DeLong: 1/18 / 2 + 1/12 / 3 = 1/18.
    auc, variance = stats.delong(np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.4, 0.5, 0.3, 0.1]))
    assert auc == pytest.approx(5 / 6)
    assert variance == pytest.approx(1 / 18)


def test_delong_counts_ties_half() -> None:
    auc, _ = stats.delong(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.8, 0.2]))
    assert auc == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_hanley_mcneil_by_hand() -> None:
    # A = 0.8, 10 positives, 20 negatives: Q1 = 0.8/1.2, Q2 = 1.28/1.8;
    # (0.16 + 9 (Q1 - 0.64) + 19 (Q2 - 0.64)) / 200 = 1.751111 / 200.
    assert stats.hanley_mcneil_variance(0.8, 10, 20) == pytest.approx(1.7511111 / 200)


def test_two_proportion_test_by_hand() -> None:
    # Window accuracy 80/100 against 90/100: pooled 0.85, SE sqrt(0.85 * 0.15 * 0.02)
    # = 0.050498, z = 1.98030, one-sided p = 0.023835.
    window = stats.Confusion(tp=30, fp=10, fn=10, tn=50)
    baseline = stats.Confusion(tp=40, fp=5, fn=5, tn=50)
    test = stats.proportion_drop("accuracy", window, baseline)
    assert (test.window, test.baseline) == (0.8, 0.9)
    assert test.standard_error == pytest.approx(0.050498, abs=1e-6)
    assert test.p_value == pytest.approx(0.023835, abs=1e-6)


def test_confusion_ratios_and_f1_by_hand() -> None:
    c = stats.Confusion(tp=2, fp=1, fn=1, tn=1)
    assert [c.ratio(m) for m in ("accuracy", "precision", "recall")] == [(3, 5), (2, 3), (2, 3)]
    assert c.f1() == pytest.approx(2 / 3)
    # Shares a, b, c = 0.4, 0.2, 0.2; D = 1.2; gradient (0.8, -0.8, -0.8) / 1.44;
    # g^2 . p = 0.246914, g . p = 0: variance 0.246914 / 5.
    assert c.f1_variance() == pytest.approx(0.0493827, abs=1e-7)
    report = {"0": {"0": 1, "1": 1}, "1": {"0": 1, "1": 2}}
    assert stats.Confusion.from_report(report) == c


def test_holm_by_hand() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([]) == []


def test_calibration_by_hand() -> None:
    assert stats.brier(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(0.1)
    bins = stats.calibration_bins(np.array([1, 0, 1, 0]), np.array([0.05, 0.05, 0.95, 0.85]))
    assert [b.count for b in bins] == [2, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert bins[0].positive_rate == 0.5 and math.isnan(bins[1].mean_score)
    # 0.5 x |0.5 - 0.05| + 0.25 x |0 - 0.85| + 0.25 x |1 - 0.95|
    assert stats.expected_calibration_error(bins) == pytest.approx(0.45)


def test_bias_metrics_by_hand_and_as_smclarify_computes_them() -> None:
    # Facet a: TP 3, FP 1, FN 1, TN 5; facet d: TP 1, FP 0, FN 2, TN 2.
    truth = [1] * 3 + [0] + [1] + [0] * 5 + [1] + [1] * 2 + [0] * 2
    guess = [1] * 3 + [1] + [0] + [0] * 5 + [1] + [0] * 2 + [0] * 2
    group = ["a"] * 10 + ["d"] * 5
    facet = bias.Facet("group", ("d",))
    cells = group_counts(np.array(group), facet, np.array(truth), np.array(guess))
    assert cells.tolist() == [3, 1, 1, 5, 1, 0, 2, 2]
    mine = {k: float(v) for k, v in bias_metrics(cells).items()}
    by_hand = {
        "CI": 5 / 15,
        "DPL": 0.4 - 0.6,
        "KL": 0.2 * math.log(1.5),
        "JS": 0.4 * math.log(0.8) + 0.6 * math.log(1.2),
        "DPPL": 0.4 - 0.2,
        "DI": 0.2 / 0.4,
        "DCAcc": 4 / 4 - 3 / 1,
        "RD": 3 / 4 - 1 / 3,
        "AD": 8 / 10 - 3 / 5,
    }
    assert mine == pytest.approx(by_hand)
    document = bias.analysis(
        pd.DataFrame({"group": group}), np.array(truth), np.array(guess), [facet]
    )
    clarify = {}
    for section in (bias.PRE_SECTION, bias.POST_SECTION):
        for metric in document[section]["facets"]["group"][0]["metrics"]:
            clarify[bias.kit_name(metric["name"])] = bias.metric_value(metric)
    assert clarify == pytest.approx(by_hand)


def test_positive_label_is_the_datasets() -> None:
    assert (Vocabulary().positive, Vocabulary().negative) == (ds.POSITIVE_LABEL, ds.NEGATIVE_LABEL)
