"""The local lifecycle end to end, reduced (750 rows per traffic phase), every stage checked.

It runs what `make demo` runs: moto on a free port, the real training entry points,
registry, promotion gates, the handler from the registered model.tar.gz, the drift job and
the stack's planned alarms and retrain rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo.lifecycle import STEPS, DemoError, DemoOptions, DemoResult, Lifecycle
from demo.shift import SHIFTED_FEATURES
from training import dataset as ds

PHASE_ROWS = 750


def _run(tmp_path: Path, **options: object) -> tuple[DemoResult, list[str]]:
    announced: list[str] = []
    lifecycle = Lifecycle(
        DemoOptions(runs_root=tmp_path / "runs", phase_rows=PHASE_ROWS, **options),  # type: ignore[arg-type]
        announce=lambda number, name: announced.append(name),
        note=lambda text: None,
    )
    return lifecycle.run(), announced


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, list[str]]:
    return _run(tmp_path_factory.mktemp("demo"))


def test_every_stage_runs_in_order(demo: tuple[DemoResult, list[str]]) -> None:
    result, announced = demo
    assert announced == list(STEPS)
    assert set(result.seconds) == set(STEPS)


def test_a_model_is_registered_gated_and_promoted_then_a_retrained_one(
    demo: tuple[DemoResult, list[str]],
) -> None:
    result, _ = demo
    assert [v.package_arn.rsplit("/", 2)[-2:] for v in result.versions] == [
        ["churn-local-models", "1"],
        ["churn-local-models", "2"],
    ]
    for version in result.versions:
        assert version.test_metrics["roc_auc"] >= 0.8  # the local stack's gate
    stack_file = (result.run_dir / "project" / "Pulumi.local.yaml").read_text()
    assert "packageVersion: 2" in stack_file
    assert result.served.startswith("version 2")


def test_the_endpoint_answered_every_request(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    for phase in (result.normal, result.drifted):
        assert phase.sent == PHASE_ROWS // 5
        assert phase.failed == 0 and phase.statuses == {200: phase.sent}


def test_drift_is_found_in_the_drifted_phase_only(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    normal, drifted = result.normal_drift, result.drifted_drift
    assert normal is not None and drifted is not None
    assert normal.counts.used == drifted.counts.used == PHASE_ROWS // 5
    assert normal.drifted == []
    assert set(drifted.drifted) == set(SHIFTED_FEATURES)
    assert normal.drift_score is not None and normal.drift_score < normal.psi_threshold


def test_concept_drift_moves_quality_not_the_inputs(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    concept, quality = result.concept_drift, result.concept_quality
    assert concept is not None and quality is not None and result.normal_quality is not None
    # The same rows as the normal phase: the data-drift job names nothing.
    assert concept.counts.used == PHASE_ROWS // 5 and concept.drifted == []
    # Every request was labelled through the inference ids the traffic sent.
    assert quality.counts.labelled_records == PHASE_ROWS // 5
    assert quality.counts.unlabelled_records == 0
    assert result.normal_quality.flagged == []
    flagged = {t.metric for t in quality.flagged}
    assert "auc" in flagged
    auc = next(t for t in quality.flagged if t.metric == "auc")
    assert auc.window < auc.baseline - 0.1


def test_the_alarm_fires_and_starts_retraining(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.alarm_state == "ALARM"
    assert result.retraining_started


def test_the_swap_to_the_retrained_model_drops_no_request(
    demo: tuple[DemoResult, list[str]],
) -> None:
    result, _ = demo
    assert result.during_swap.sent > 0
    assert result.during_swap.failed == 0


def test_the_report_shows_versions_drift_and_latency(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    assert result.report is not None
    page = result.report.read_text()
    for text in (
        "Model quality per version",
        "Drift per feature",
        "Latency",
        "v2 roc_auc",
        "Concept drift: the same inputs, new labels",
        "Attributions per feature",
    ):
        assert text in page
    for feature in SHIFTED_FEATURES:
        assert f"{feature} (drifted)" in page
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["alarm_state"] == "ALARM" and summary["traffic"]["during swap"]["failed"] == 0
    assert summary["quality"]["concept"]["flagged"] and not summary["quality"]["normal"]["flagged"]
    # The top features as each version's evaluation attributed them, largest first.
    v1 = list(summary["attributions"]["v1"].values())
    assert len(v1) == 19 and v1 == sorted(v1, reverse=True) and v1[0] > 0


def test_a_failing_stage_stops_the_demo_and_names_it(tmp_path: Path) -> None:
    broken = ds.load_shipped()
    broken.loc[:20, "total_day_minutes"] = -5.0  # negative minutes break the data contract
    raw = tmp_path / "broken.csv"
    broken.to_csv(raw, index=False)

    with pytest.raises(DemoError) as raised:
        _run(tmp_path, raw_csv=raw)

    assert raised.value.step == "ingest, validate, train, evaluate"
    assert "total_day_minutes" in raised.value.message
