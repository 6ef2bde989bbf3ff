"""training.explain: Kernel SHAP against exact Shapley values, Clarify's JSON, Clarify's NDCG."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.metrics import ndcg_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from training import explain, manifest
from training.explain import Background, ExplainError

COLUMNS = ["colour", "x1", "x2", "x3", "x4"]


@pytest.fixture(scope="module")
def small() -> tuple[Pipeline, pd.DataFrame]:
    """A five-input classifier with a categorical input and interactions between inputs."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.integers(0, 5, size=n).astype(float),
            "x4": rng.normal(size=n),
        }
    )
    logit = 1.5 * frame.x1 * (frame.colour == "red") + frame.x2 * frame.x3 / 2 - 0.5 * frame.x4
    y = (logit + rng.normal(scale=0.3, size=n) > 0).astype(int)
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                        ("num", "passthrough", ["x1", "x2", "x3", "x4"]),
                    ]
                ),
            ),
            ("classifier", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        ]
    ).fit(frame, y)
    return model, frame


def exact_shapley(model: Any, row: pd.Series, background: Background) -> np.ndarray:
    """Shapley values by enumerating every coalition: v(S) is the model's output with the
    features in S taken from ``row`` and the others from each background row, averaged with
    the background's weights."""
    names = list(background.rows.columns)
    m = len(names)
    coalitions = [s for k in range(m + 1) for s in itertools.combinations(range(m), k)]
    blocks = []
    for coalition in coalitions:
        mixed = background.rows.copy()
        for j in coalition:
            mixed[names[j]] = row[names[j]]
        blocks.append(mixed)
    outputs = model.predict_proba(pd.concat(blocks, ignore_index=True))[:, 1]
    per_coalition = outputs.reshape(len(coalitions), len(background.rows)) @ background.weights
    values = dict(zip(coalitions, per_coalition, strict=True))
    phi = np.zeros(m)
    for i in range(m):
        for subset, v in values.items():
            if i in subset:
                continue
            weight = math.factorial(len(subset)) * math.factorial(m - len(subset) - 1)
            phi[i] += weight / math.factorial(m) * (values[tuple(sorted((*subset, i)))] - v)
    return phi


def test_kernel_shap_with_every_coalition_is_the_exact_shapley_value(
    small: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = small
    background = explain.summarise(frame, 3, seed=0)
    rows = frame.iloc[:6].reset_index(drop=True)
    # 2^5 - 2 = 30 coalitions: with at least that many samples Kernel SHAP enumerates them all.
    result = explain.shap_values(model, rows, background, nsamples=64)
    for i in range(len(rows)):
        np.testing.assert_allclose(
            result.values[i], exact_shapley(model, rows.iloc[i], background), atol=1e-9
        )


def test_sampled_kernel_shap_stays_close_to_the_exact_value(
    small: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = small
    background = explain.summarise(frame, 3, seed=0)
    rows = frame.iloc[:6].reset_index(drop=True)
    result = explain.shap_values(model, rows, background, nsamples=20, seed=3)
    exact = np.array([exact_shapley(model, rows.iloc[i], background) for i in range(len(rows))])
    spread = np.abs(exact).max()
    assert np.abs(result.values - exact).max() < 0.1 * spread


def test_values_add_up_to_the_prediction_minus_the_base_value(
    small: tuple[Pipeline, pd.DataFrame],
) -> None:
    model, frame = small
    background = explain.summarise(frame, 4, seed=1)
    rows = frame.iloc[10:40].reset_index(drop=True)
    result = explain.shap_values(model, rows, background, nsamples=12, seed=5)
    predictions = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(result.predictions, predictions)
    # Efficiency: phi_0 + sum_i phi_i = f(x), phi_0 the background's weighted mean output.
    base = model.predict_proba(background.rows)[:, 1] @ background.weights
    assert result.expected_value == pytest.approx(base)
    np.testing.assert_allclose(result.values.sum(axis=1) + base, predictions, atol=1e-9)


def test_analysis_json_is_clarifys_layout(small: tuple[Pipeline, pd.DataFrame]) -> None:
    model, frame = small
    rows = frame.iloc[:40]
    document = explain.explain(model, rows, background_rows=1, seed=0, nsamples=64)
    # Clarify's "Get the Analysis Results": explanations.kernel_shap.label0 holds the global
    # SHAP value of each input column and the expected value.
    assert set(document) == {"version", "explanations"}
    assert document["version"] == "1.0"
    assert list(document["explanations"]) == ["kernel_shap"]
    assert list(document["explanations"]["kernel_shap"]) == ["label0"]
    entry = document["explanations"]["kernel_shap"]["label0"]
    assert set(entry) == {"global_shap_values", "expected_value"}
    # One value per input column: the categorical colour is one feature, not three.
    assert list(entry["global_shap_values"]) == COLUMNS
    local = explain.shap_values(model, rows, explain.summarise(rows, 1), nsamples=64)
    expected = np.abs(local.values).mean(axis=0)
    assert list(entry["global_shap_values"].values()) == pytest.approx(list(expected))
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert explain.global_attributions(document) == entry["global_shap_values"]


def test_the_same_seed_gives_the_same_document(small: tuple[Pipeline, pd.DataFrame]) -> None:
    model, frame = small
    rows = frame.iloc[:30]
    first = explain.explain(model, rows, background_rows=2, seed=7, nsamples=20)
    assert explain.explain(model, rows, background_rows=2, seed=7, nsamples=20) == first
    assert explain.explain(model, rows, background_rows=2, seed=8, nsamples=20) != first


def test_the_average_instance_is_the_column_means_and_most_frequent_categories() -> None:
    frame = pd.DataFrame(
        {"plan": ["no", "yes", "no", "no"], "minutes": [100.0, 200.0, 300.0, 400.0]}
    )
    background = explain.summarise(frame, 1)
    assert background.rows.to_dict(orient="records") == [{"plan": "no", "minutes": 250.0}]
    assert background.weights.tolist() == [1.0]


def test_clustered_background_rows_are_weighted_centres() -> None:
    frame = pd.DataFrame(
        {
            "plan": ["no", "no", "yes", "yes", "yes", "no"],
            "minutes": [10.0, 12.0, 14.0, 500.0, 510.0, 520.0],
        }
    )
    background = explain.summarise(frame, 2, seed=0)
    centres = sorted(background.rows.to_dict(orient="records"), key=lambda r: r["minutes"])
    # Two clusters: {10, 12, 14} (plan no, no, yes -> no) and {500, 510, 520} (yes, yes, no).
    assert centres == [{"plan": "no", "minutes": 12.0}, {"plan": "yes", "minutes": 510.0}]
    assert background.weights.tolist() == [0.5, 0.5]
    # More centres than rows: every row stands for itself.
    assert len(explain.summarise(frame.iloc[:2], 5).rows) == 2


# --- NDCG --------------------------------------------------------------------------------


def test_ndcg_of_aws_college_admissions_example() -> None:
    # AWS, "Feature attribution drift for models in production": training attributions SAT
    # 0.70, GPA 0.50, class rank 0.05; live ranking class rank, GPA, SAT.
    #   DCG  = 0.05/log2(2) + 0.50/log2(3) + 0.70/log2(4) = 0.05 + 0.315465 + 0.35  = 0.715465
    #   iDCG = 0.70/log2(2) + 0.50/log2(3) + 0.05/log2(4) = 0.70 + 0.315465 + 0.025 = 1.040465
    # NDCG = 0.715465 / 1.040465 = 0.687640, "0.69" on the page.
    baseline = {"sat": 0.70, "gpa": 0.50, "rank": 0.05}
    live = {"sat": 0.10, "gpa": 0.20, "rank": 0.70}
    assert explain.ndcg(baseline, live) == pytest.approx(0.687640, abs=1e-6)
    assert round(explain.ndcg(baseline, live), 2) == 0.69
    assert explain.ndcg(baseline, baseline) == 1.0
    # The same order with other magnitudes is no drift: NDCG ranks, the baseline weighs.
    assert explain.ndcg(baseline, {"sat": 9.0, "gpa": 8.0, "rank": 0.0}) == 1.0


def test_ndcg_gives_tied_live_features_their_mean_relevance() -> None:
    # Every live value tied: each position gets the mean gain (3 + 2 + 1) / 3 = 2, so
    #   DCG  = 2 * (1 + 1/log2(3) + 1/2) = 2 * 2.130930 = 4.261860
    #   iDCG = 3 + 2/log2(3) + 1/2 = 4.761860       ->  NDCG = 0.895000
    baseline = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert explain.ndcg(baseline, {"a": 0.5, "b": 0.5, "c": 0.5}) == pytest.approx(
        0.895000, abs=1e-6
    )


def test_ndcg_matches_scikit_learn() -> None:
    # The violations page defines the score as scikit-learn's ndcg_score.
    rng = np.random.default_rng(4)
    for _ in range(20):
        gains, scores = rng.random(12), rng.random(12)
        scores[3] = scores[7]  # a tie
        names = [f"f{i}" for i in range(12)]
        ours = explain.ndcg(
            dict(zip(names, gains, strict=True)), dict(zip(names, scores, strict=True))
        )
        assert ours == pytest.approx(ndcg_score([gains], [scores]))


def test_a_swap_at_the_top_costs_more_than_one_at_the_bottom() -> None:
    baseline = {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.05}
    top = explain.ndcg(baseline, {"a": 0.3, "b": 0.5, "c": 0.1, "d": 0.05})
    bottom = explain.ndcg(baseline, {"a": 0.5, "b": 0.3, "c": 0.05, "d": 0.1})
    assert bottom > top
    assert bottom > 0.99


@pytest.mark.parametrize(
    ("baseline", "live", "message"),
    [
        ({"a": 1.0}, {"b": 1.0}, "different features"),
        ({"a": -1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}, "must not be negative"),
        ({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 2.0}, "all zero"),
        ({"a": float("nan")}, {"a": 1.0}, "finite"),
        ({}, {}, "no attributions"),
    ],
)
def test_ndcg_refuses_what_it_cannot_rank(
    baseline: dict[str, float], live: dict[str, float], message: str
) -> None:
    with pytest.raises(ExplainError, match=message):
        explain.ndcg(baseline, live)


# --- reading analyses and refusing bad input -------------------------------------------


def test_global_attributions_read_any_single_label() -> None:
    # With label_headers set, Clarify names the label after it instead of label0.
    document = {
        "explanations": {
            "kernel_shap": {"yes": {"global_shap_values": {"a": 0.2, "b": 1}, "expected_value": 0}}
        }
    }
    assert explain.global_attributions(document) == {"a": 0.2, "b": 1.0}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "no explanations.kernel_shap"),
        ({"explanations": {"kernel_shap": {}}}, "lists no label"),
        ({"explanations": {"kernel_shap": {"label0": {}}}}, "no global_shap_values"),
        (
            {"explanations": {"kernel_shap": {"label0": {"global_shap_values": {"a": "x"}}}}},
            "not a finite number",
        ),
        ([], "no explanations.kernel_shap"),
    ],
)
def test_global_attributions_refuse_other_documents(document: Any, message: str) -> None:
    with pytest.raises(ExplainError, match=message):
        explain.global_attributions(document)


def test_explain_refuses_what_it_cannot_explain(small: tuple[Pipeline, pd.DataFrame]) -> None:
    model, frame = small
    regressor = LinearRegression().fit(frame[["x1"]], frame["x2"])
    with pytest.raises(ExplainError, match="not a fitted classifier"):
        explain.explain(regressor, frame[["x1"]])
    with pytest.raises(ExplainError, match="no rows"):
        explain.explain(model, frame.iloc[:0])
    with pytest.raises(ExplainError, match="missing values in x2"):
        explain.explain(model, frame.iloc[:5].assign(x2=[1.0, None, 2.0, 3.0, 4.0]))
    with pytest.raises(ExplainError, match="at least 1"):
        explain.explain(model, frame.iloc[:5], background_rows=0)
    with pytest.raises(ExplainError, match="nsamples"):
        explain.explain(model, frame.iloc[:5], nsamples=0)


def test_the_churn_model_gets_one_attribution_per_input(
    model_dir: Path, test_rows: pd.DataFrame
) -> None:
    from training import dataset as ds

    model = manifest.load_verified_model(model_dir)
    document = explain.explain(model, test_rows.iloc[:40], seed=0)
    values = explain.global_attributions(document)
    assert list(values) == list(ds.FEATURES)
    assert all(v >= 0 for v in values.values())
    entry = document["explanations"]["kernel_shap"]["label0"]
    assert 0 < entry["expected_value"] < 1
