"""Clarify's bias metrics (training.bias) against hand-computed values, and the evaluation gate.

The tiny table: facet g with the advantaged group a (6 rows) and the sensitive group d
(4 rows). Expected values follow Clarify's documented definitions (SageMaker Developer
Guide, "Pre-training bias metrics" and "Post-training data and model bias metrics"):

    a: labels 1 1 1 0 0 0   predictions 1 1 0 1 1 0   TP 2  FN 1  FP 2  TN 1
    d: labels 1 0 0 0       predictions 1 1 0 0       TP 1  FN 0  FP 1  TN 2
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training import bias, evaluate

FEATURES = pd.DataFrame({"g": ["a"] * 6 + ["d"] * 4, "x": range(10)})
LABELS = np.array([1, 1, 1, 0, 0, 0, 1, 0, 0, 0])
PREDICTED = np.array([1, 1, 0, 1, 1, 0, 1, 1, 0, 0])
FACET = bias.Facet("g", ("d",))


def _values(document: dict[str, Any], section: str, facet: str = "g") -> dict[str, Any]:
    [result] = document[section]["facets"][facet]
    return {m["name"]: m["value"] for m in result["metrics"]}


def _kl(p: tuple[float, ...], q: tuple[float, ...]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_pre_training_metrics_match_clarifys_definitions() -> None:
    document = bias.analysis(FEATURES, LABELS, None, [FACET])

    values = _values(document, bias.PRE_SECTION)
    # CI = (n_a - n_d) / (n_a + n_d)
    assert values["CI"] == pytest.approx((6 - 4) / 10)
    # DPL = q_a - q_d, the proportions of positive labels
    assert values["DPL"] == pytest.approx(3 / 6 - 1 / 4)
    # Label distributions (P(y=1), P(y=0)): a (0.5, 0.5), d (0.25, 0.75)
    p_a, p_d = (0.5, 0.5), (0.25, 0.75)
    assert values["KL"] == pytest.approx(_kl(p_a, p_d))  # 0.143841
    mix = tuple((x + y) / 2 for x, y in zip(p_a, p_d, strict=True))
    assert values["JS"] == pytest.approx(0.5 * (_kl(p_a, mix) + _kl(p_d, mix)))
    assert bias.POST_SECTION not in document


def test_post_training_metrics_match_clarifys_definitions() -> None:
    document = bias.analysis(FEATURES, LABELS, PREDICTED, [FACET])

    values = _values(document, bias.POST_SECTION)
    # DPPL = q^_a - q^_d, the proportions of positive predictions: 4/6 and 2/4
    assert values["DPPL"] == pytest.approx(4 / 6 - 2 / 4)
    # DI = q^_d / q^_a
    assert values["DI"] == pytest.approx((2 / 4) / (4 / 6))
    # DCAcc = c_a - c_d with c = observed positives / predicted positives: 3/4 and 1/2
    assert values["DCA"] == pytest.approx(3 / 4 - 1 / 2)
    # RD = recall_a - recall_d = TP/(TP+FN): 2/3 and 1/1
    assert values["RD"] == pytest.approx(2 / 3 - 1)
    # AD = accuracy_a - accuracy_d = (TP+TN)/n: 3/6 and 3/4
    assert values["AD"] == pytest.approx(3 / 6 - 3 / 4)
    # The labels' metrics come along whenever predictions do.
    assert _values(document, bias.PRE_SECTION)["CI"] == pytest.approx(0.2)


def test_the_document_is_clarifys_analysis_json_layout() -> None:
    document = json.loads(
        json.dumps(bias.analysis(FEATURES, LABELS, PREDICTED, [FACET]), allow_nan=False)
    )

    assert set(document) == {"version", bias.PRE_SECTION, bias.POST_SECTION}
    assert document["version"] == "1.0"
    for section, names in (
        (bias.PRE_SECTION, {"CI", "DPL", "KL", "JS"}),
        (bias.POST_SECTION, {"DPPL", "DI", "DCA", "RD", "AD"}),
    ):
        body = document[section]
        assert set(body) == {"label", "label_value_or_threshold", "facets"}
        assert body["label"] == "churn" and body["label_value_or_threshold"] == "1"
        [result] = body["facets"]["g"]
        assert set(result) == {"value_or_threshold", "metrics"}
        assert result["value_or_threshold"] == "d"
        assert {m["name"] for m in result["metrics"]} == names
        assert all(set(m) == {"name", "description", "value"} for m in result["metrics"])
    [result] = document[bias.POST_SECTION]["facets"]["g"]
    descriptions = {m["name"]: m["description"] for m in result["metrics"]}
    assert descriptions["DCA"] == "Difference in Conditional Acceptance (DCA)"
    assert descriptions["DI"] == "Disparate Impact (DI)"


def test_several_groups_of_one_column_and_a_numeric_facet() -> None:
    facets = [bias.Facet("g", ("d",)), bias.Facet("g", ("a",)), bias.Facet("x", ("7",))]

    document = bias.analysis(FEATURES, LABELS, PREDICTED, facets)

    groups = document[bias.PRE_SECTION]["facets"]
    assert [r["value_or_threshold"] for r in groups["g"]] == ["d", "a"]
    ci = {r["value_or_threshold"]: r["metrics"][0]["value"] for r in groups["g"]}
    assert ci == {"d": pytest.approx(0.2), "a": pytest.approx(-0.2)}
    # x takes ten values, so Clarify reads 7 as a threshold: the group is x in (7, 9], two
    # rows with negative labels. CI = (8 - 2) / 10, DPL = 4/8 - 0/2.
    [above] = groups["x"]
    assert above["value_or_threshold"] == "(7, 9]"
    values = {m["name"]: m["value"] for m in above["metrics"]}
    assert values["CI"] == pytest.approx(0.6) and values["DPL"] == pytest.approx(0.5)


def test_a_facet_missing_from_the_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"facet column\(s\) plan not in the data; .* g, x"):
        bias.analysis(FEATURES, LABELS, PREDICTED, [bias.Facet("plan", ("yes",))])


def test_a_facet_value_never_seen_gives_metrics_with_errors_and_counts_as_a_violation() -> None:
    document = bias.analysis(FEATURES, LABELS, PREDICTED, [bias.Facet("g", ("zz",))])

    [result] = document[bias.POST_SECTION]["facets"]["g"]
    assert all(m["value"] is None and m["error"] for m in result["metrics"])
    json.dumps(document, allow_nan=False)
    [violation] = bias.violations(document, {"DPPL": 0.5})
    assert violation.metric == "DPPL" and math.isnan(violation.value)
    assert "could not be computed (Facet set is empty.)" in str(violation)


def test_a_group_without_positives() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])  # d has no churner

    document = bias.analysis(FEATURES, labels, PREDICTED, [FACET])

    json.dumps(document, allow_nan=False)
    assert _values(document, bias.PRE_SECTION)["DPL"] == pytest.approx(0.5 - 0.0)
    post = _values(document, bias.POST_SECTION)
    # c_d = 0 observed / 2 predicted positives
    assert post["DCA"] == pytest.approx(3 / 4 - 0.0)
    # d's accuracy: TN 2 of 4
    assert post["AD"] == pytest.approx(3 / 6 - 2 / 4)


def test_an_infinite_disparate_impact_is_written_as_clarify_writes_it() -> None:
    predicted = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0, 0])  # a gets no positive prediction

    document = bias.analysis(FEATURES, LABELS, predicted, [FACET])

    assert _values(document, bias.POST_SECTION)["DI"] == "Infinity"
    json.dumps(document, allow_nan=False)
    [violation] = bias.violations(document, {"DI": 10.0})
    assert violation.value == math.inf and "over the limit 10" in str(violation)


def test_no_positive_prediction_at_all_leaves_every_post_training_metric_an_error() -> None:
    document = bias.analysis(FEATURES, LABELS, np.zeros(10, dtype=int), [FACET])

    [result] = document[bias.POST_SECTION]["facets"]["g"]
    assert {m["name"] for m in result["metrics"]} == {"AD", "DCA", "DI", "DPPL", "RD"}
    assert all(m["value"] is None and "predicted" in m["error"] for m in result["metrics"])
    assert _values(document, bias.PRE_SECTION)["CI"] == pytest.approx(0.2)


def test_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="9 predicted labels for 10 rows"):
        bias.analysis(FEATURES, LABELS, PREDICTED[:9], [FACET])


@pytest.mark.parametrize(
    ("text", "facet"),
    [
        ("international_plan=yes", bias.Facet("international_plan", ("yes",))),
        ("state=CA,TX", bias.Facet("state", ("CA", "TX"))),
        (" state = CA , TX ", bias.Facet("state", ("CA", "TX"))),
    ],
)
def test_parse_facet(text: str, facet: bias.Facet) -> None:
    assert bias.parse_facet(text) == facet


@pytest.mark.parametrize("text", ["state", "=CA", "state=", "state=CA,,TX"])
def test_parse_facet_refuses_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not NAME=VALUE\[,VALUE\.\.\.\]"):
        bias.parse_facet(text)


def test_parse_limit() -> None:
    assert bias.parse_limit("DPPL=0.2") == ("DPPL", 0.2)
    assert bias.parse_limit("dcacc=0.1") == ("DCAcc", 0.1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("XYZ=0.1", "METRIC one of CI, DPL, KL, JS, DPPL, DI, DCAcc, RD, AD"),
        ("DPPL", "METRIC one of"),
        ("DPPL=lots", "'lots' is not a number"),
        ("DPPL=-1", "finite number >= 0"),
        ("DPPL=inf", "finite number >= 0"),
    ],
)
def test_parse_limit_refuses_bad_limits(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bias.parse_limit(text)


def test_deviation_is_from_each_metrics_fair_value() -> None:
    assert bias.deviation("DI", 0.7) == pytest.approx(0.3)
    assert bias.deviation("DI", 1.25) == pytest.approx(0.25)
    assert bias.deviation("DPPL", -0.3) == pytest.approx(0.3)
    assert bias.deviation("CI", 0.0) == 0.0
    with pytest.raises(ValueError, match="unknown bias metric 'XYZ'"):
        bias.deviation("XYZ", 1.0)


def test_violations_read_limits_by_the_kits_names() -> None:
    document = bias.analysis(FEATURES, LABELS, PREDICTED, [FACET])

    # DCAcc 0.25, DI 0.75 (0.25 from fair), DPPL 1/6, RD -1/3, AD -0.25, CI 0.2
    found = bias.violations(document, {"DCAcc": 0.2, "DI": 0.3, "RD": 0.4, "CI": 0.1})

    assert sorted((v.metric, v.facet, v.value_or_threshold) for v in found) == [
        ("CI", "g", "d"),
        ("DCAcc", "g", "d"),
    ]
    assert bias.violations(document, {"DPPL": 0.2, "AD": 0.25}) == []
    assert bias.violations(document, {}) == []


@pytest.mark.parametrize(
    "document",
    [
        [],
        {bias.POST_SECTION: {"facets": {"g": [{"metrics": [{"name": "CI", "value": 1}]}]}}},
        {bias.PRE_SECTION: 3},
    ],
)
def test_violations_refuse_other_layouts(document: Any) -> None:
    with pytest.raises(ValueError, match="bias analysis"):
        bias.violations(document, {"CI": 0.1})


# The evaluation job: its bias gate.


def _evaluate(model_dir: Path, processed: Path, out: Path, *args: str) -> int:
    return evaluate.main(
        [
            "--model", str(model_dir), "--test-dir", str(processed / "test"),
            "--output-dir", str(out), "--explain-rows", "0", *args,
        ]
    )  # fmt: skip


def test_evaluation_exits_4_over_a_limit_and_records_the_violations(
    model_dir: Path, processed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # International-plan customers churn far more often: DPPL is well below -0.1.
    code = _evaluate(
        model_dir, processed, tmp_path, "--facet", "international_plan=yes",
        "--bias-limit", "DPPL=0.1", "--bias-limit", "AD=0.9",
    )  # fmt: skip

    assert code == evaluate.EXIT_BIAS
    out, err = capsys.readouterr()
    assert "test:roc_auc=" in out
    assert "DPPL for international_plan=yes is -0." in out
    assert "1 bias metric(s) over their limit" in err
    gates = json.loads((tmp_path / "gates.json").read_text())
    assert gates["bias_violations"] == 1
    assert gates["bias_limits"] == {"AD": 0.9, "DPPL": 0.1}
    report = json.loads((tmp_path / "bias" / "analysis.json").read_text())
    [group] = report[bias.POST_SECTION]["facets"]["international_plan"]
    dppl = next(m["value"] for m in group["metrics"] if m["name"] == "DPPL")
    assert gates["violations"] == [
        f"DPPL for international_plan=yes is {dppl:.4g}: {abs(dppl):.4g} from fair, over the "
        "limit 0.1"
    ]
    assert (tmp_path / "evaluation.json").is_file() and (tmp_path / "model_card.json").is_file()


def test_evaluation_only_records_violations_for_a_pipelines_condition_step(
    model_dir: Path, processed: Path, tmp_path: Path
) -> None:
    code = _evaluate(
        model_dir, processed, tmp_path, "--facet", "international_plan=yes",
        "--bias-limit", "DPPL=0.1", "--no-fail-on-bias",
    )  # fmt: skip

    assert code == evaluate.EXIT_OK
    assert json.loads((tmp_path / "gates.json").read_text())["bias_violations"] == 1


def test_evaluation_within_limits_or_without_any(
    model_dir: Path, processed: Path, tmp_path: Path
) -> None:
    assert _evaluate(model_dir, processed, tmp_path / "none") == evaluate.EXIT_OK
    gates = json.loads((tmp_path / "none" / "gates.json").read_text())
    assert gates == {"bias_limits": {}, "bias_violations": 0, "violations": []}
    report = json.loads((tmp_path / "none" / "bias" / "analysis.json").read_text())
    assert report[bias.PRE_SECTION]["facets"] == {}

    code = _evaluate(
        model_dir, processed, tmp_path / "loose", "--facet", "state=CA,TX", "--bias-limit",
        "CI=1", "--bias-limit", "DPPL=1",
    )  # fmt: skip
    assert code == evaluate.EXIT_OK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--facet", "plan=yes"], "facet column(s) plan not in the data"),
        (["--facet", "state"], "is not NAME=VALUE"),
        (["--bias-limit", "XX=1"], "METRIC one of"),
        (["--explain-rows", "-1"], "--explain-rows must be 0 or more"),
    ],
)
def test_evaluation_refuses_bad_bias_arguments_in_one_line(
    model_dir: Path,
    processed: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert _evaluate(model_dir, processed, tmp_path, *args) == evaluate.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "evaluation.json").exists()
