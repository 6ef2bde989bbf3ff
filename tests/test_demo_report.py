"""The demo's report reads well: legends, labels that fit, a readable threshold, plain words,
working links to the drift pages, and both model versions compared on the same rows.

The rendering checks use a hand-built DemoResult (fast); one reduced lifecycle run checks that
the comparison the report shows was really made on the same held-out rows.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from demo import report
from demo.comparison import Comparison, HeldOut, HeldOutScores, Score
from demo.lifecycle import DemoOptions, DemoResult, Lifecycle, ModelVersion
from demo.shift import SHIFTED_FEATURES
from demo.traffic import TrafficResult
from monitoring import report as drift_report
from monitoring.capture import Counts
from monitoring.statistics import FeatureDrift
from training import dataset as ds
from training.train import read_channel

SVG = "{http://www.w3.org/2000/svg}"
# A wide average glyph at the report's font size: text laid out with it fits in real fonts.
GLYPH_PX = 0.6 * report.FONT_PX
LONGEST = max(ds.FEATURES, key=len)
CAPPED_PSI = 2.376
THRESHOLD = 0.2


def _feature(name: str, psi: float) -> FeatureDrift:
    return FeatureDrift(
        name, "numeric", 150, psi, psi >= THRESHOLD, "ks", 0.1, 0.5, ("a",), (1.0,), (1.0,), {}
    )


def _drift(psi: dict[str, float]) -> drift_report.DriftReport:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return drift_report.DriftReport(
        capture="capture",
        baseline="baseline",
        endpoint="churn-local-endpoint",
        start=moment,
        end=moment,
        psi_threshold=THRESHOLD,
        ks_alpha=0.01,
        counts=Counts(lines=30, in_window=30, used=30, rows=150),
        features=[_feature(name, value) for name, value in psi.items()],
        files=1,
        folders=1,
        seconds=0.1,
    )


def _traffic(*latencies: float) -> TrafficResult:
    result = TrafficResult()
    for latency in latencies:
        result.record(200, latency)
    return result


def _metrics(auc: float) -> dict[str, float]:
    return {"roc_auc": auc, "accuracy": 0.9, "precision": 0.7, "recall": 0.6, "f1": 0.65}


def _scores(key: str, title: str, rows: int, v1: float, v2: float) -> HeldOutScores:
    data = HeldOut(key, title, f"about the {title}", Path(key))
    return HeldOutScores(
        data, tuple(Score(v, rows, "ab" * 32, _metrics(auc)) for v, auc in (("v1", v1), ("v2", v2)))
    )


def _result(run_dir: Path, *, retraining_started: bool = True) -> DemoResult:
    """A finished run as the lifecycle leaves it, with the drift job's pages on disk."""
    normal = _drift(dict.fromkeys(ds.FEATURES, 0.01))
    drifted = _drift(dict.fromkeys(ds.FEATURES, 0.01) | {LONGEST: CAPPED_PSI, "state": 0.46})
    for phase, drift in (("normal", normal), ("drifted", drifted)):
        folder = run_dir / "drift" / phase
        folder.mkdir(parents=True)
        (folder / drift_report.HTML_FILE).write_bytes(drift_report.to_html(drift))
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-local-models/"
    return DemoResult(
        run_dir=run_dir,
        aws_url="http://127.0.0.1:5000",
        versions=[
            ModelVersion("v1", arn + "1", "0" * 64, _metrics(0.944), 1.0),
            ModelVersion("v2", arn + "2", "1" * 64, _metrics(0.852), 1.0),
        ],
        normal=_traffic(10, 12, 60),
        drifted=_traffic(11, 13, 40),
        during_swap=_traffic(15, 16, 55),
        normal_drift=normal,
        drifted_drift=drifted,
        alarm_state="ALARM",
        retraining_started=retraining_started,
        served="version 2 (churn-local-models)",
        seconds={"embedded AWS": 1.5, "report": 0.1},
        notes=["v1: 5000 rows validated", "swapped to version 2"],
        comparison=Comparison(
            ("v1", "v2"),
            (
                _scores("drifted-test", "drifted test rows", 750, 0.700, 0.852),
                _scores("normal-test", "normal test rows", 750, 0.944, 0.930),
            ),
        ),
    )


@pytest.fixture
def written(tmp_path: Path) -> tuple[DemoResult, str]:
    result = _result(tmp_path / "run")
    path = report.write_report(result)
    return result, path.read_text(encoding="utf-8")


def _charts(page: str) -> dict[str, ET.Element]:
    """Every chart on the page, by its aria-label."""
    charts = {}
    for markup in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        svg = ET.fromstring(markup.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))
        charts[svg.attrib["aria-label"]] = svg
    return charts


def _texts(svg: ET.Element, kind: str | None = None) -> list[ET.Element]:
    return [t for t in svg.iter(f"{SVG}text") if kind is None or t.get("class") == kind]


def _visible(page: str) -> str:
    """The words a reader sees: no tags, attributes, styles or hover titles."""
    page = re.sub(r"<(style|title)>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_every_chart_has_a_legend_entry_per_series(written: tuple[DemoResult, str]) -> None:
    _, page = written
    charts = _charts(page)
    expected = {
        "Model quality per version": ["v1", "v2"],
        "ROC AUC on the same rows": ["v1", "v2"],
        "Drift per feature": [
            "normal",
            "drifted",
            "threshold 0.2",
            "bar cut at 1, true value written",
        ],
        "Latency per traffic phase": ["normal", "drifted", "during swap"],
    }
    assert set(charts) == set(expected)
    for title, entries in expected.items():
        assert [t.text for t in _texts(charts[title], "legend")] == entries, title


def test_series_have_their_own_colours(written: tuple[DemoResult, str]) -> None:
    _, page = written
    drift = _charts(page)["Drift per feature"]
    colours = {
        g.get("data-key", "").split()[0]: g.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
        for g in drift.iter(f"{SVG}g")
        if g.get("data-key")
    }
    assert colours["normal"] != colours["drifted"]


@pytest.mark.parametrize(
    "longest", [LONGEST, "a_feature_name_far_longer_than_any_in_the_data_set_x"]
)
def test_labels_and_bars_fit_inside_the_viewbox(tmp_path: Path, longest: str) -> None:
    result = _result(tmp_path / "run")
    assert result.drifted_drift is not None
    result.drifted_drift.features.append(_feature(longest, 0.5))
    page = report.write_report(result).read_text()
    for title, svg in _charts(page).items():
        width = float(svg.attrib["viewBox"].split()[2])
        assert float(svg.attrib["width"]) == width
        for text in _texts(svg):
            x, span = float(text.attrib["x"]), len(text.text or "") * GLYPH_PX
            anchor = text.get("text-anchor", "start")
            left = {"start": x, "middle": x - span / 2, "end": x - span}[anchor]
            assert left >= 0 and left + span <= width, (title, text.text)
        for rect in svg.iter(f"{SVG}rect"):
            assert float(rect.get("x", 0)) + float(rect.attrib["width"]) <= width, title
    labels = [t.text for t in _texts(_charts(page)["Drift per feature"])]
    assert longest in labels and LONGEST in labels


def test_a_value_above_the_cap_is_cut_and_written_and_the_threshold_stays_readable(
    written: tuple[DemoResult, str],
) -> None:
    _, page = written
    drift = _charts(page)["Drift per feature"]
    bars = {g.get("data-key"): g for g in drift.iter(f"{SVG}g") if g.get("data-key")}
    capped = bars[f"drifted {LONGEST}"]
    value = capped.find(f"{SVG}text")
    assert value is not None and value.text == f"{CAPPED_PSI:.3f}"
    assert value.get("font-weight") == "bold"
    rect = capped.find(f"{SVG}rect")
    assert rect is not None and float(rect.attrib["width"]) == report.PLOT_PX
    assert len(capped.findall(f"{SVG}polygon")) == 1  # the cut mark
    # The threshold's line sits a fifth of the way along the plot, not squeezed to its start.
    (line,) = [
        x for x in drift.iter(f"{SVG}line") if x.get("stroke-dasharray") and x.get("y1") != "6"
    ]
    plot_start = float(rect.attrib["x"])
    assert float(line.attrib["x1"]) - plot_start == pytest.approx(report.PLOT_PX * THRESHOLD / 1.0)
    # Neither the line nor its label crosses the feature names left of the plot.
    assert all(
        float(t.attrib["x"]) <= plot_start for t in _texts(drift) if t.get("text-anchor") == "end"
    )


@pytest.mark.parametrize("started", [True, False])
def test_the_page_speaks_plain_words(tmp_path: Path, started: bool) -> None:
    result = _result(tmp_path / "run", retraining_started=started)
    page = report.write_report(result).read_text()
    assert not re.search(r"\b(True|False|None)\b", page)
    visible = _visible(page)
    for key in ("roc_auc", "retraining_started", "alarm_state", "p50_ms", "test_metrics"):
        assert key not in visible
    assert ("Retraining not started" in " ".join(visible.split())) is not started
    assert "ROC AUC" in visible


def test_each_phase_links_its_drift_page_and_the_links_survive_a_move(
    written: tuple[DemoResult, str], tmp_path: Path
) -> None:
    result, page = written
    links = re.findall(r'<a href="([^"]+)"', page)
    assert links == ["drift/normal/drift.html", "drift/drifted/drift.html"]
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(result.run_dir, moved)
    for link in links:
        assert not link.startswith(("/", "file:")) and (moved / link).is_file()
        assert "Feature drift" in (moved / link).read_text()


def test_the_comparison_is_a_sentence_a_chart_and_a_table(written: tuple[DemoResult, str]) -> None:
    _, page = written
    visible = " ".join(_visible(page).split())
    assert "On the same 750 drifted test rows, v2 scores ROC AUC 0.852 vs v1 0.700." in visible
    assert "On the same 750 normal test rows, v1 scores ROC AUC 0.944 vs v2 0.930." in visible
    chart = _charts(page)["ROC AUC on the same rows"]
    assert [t.text for t in _texts(chart) if t.get("text-anchor") == "end"] == [
        "drifted test rows (750)",
        "normal test rows (750)",
    ]
    assert page.count("<th>Version</th>") == 1 and "<td>v2</td>" in page


def test_summary_records_the_comparison_and_the_drift_pages(
    written: tuple[DemoResult, str],
) -> None:
    result, _ = written
    summary = json.loads((result.run_dir / report.SUMMARY_FILE).read_text())
    assert summary["drift_pages"] == {
        "normal": "drift/normal/drift.html",
        "drifted": "drift/drifted/drift.html",
    }
    drifted = summary["comparison"]["held_out"]["drifted-test"]
    assert drifted["rows"] == 750
    assert drifted["scores"]["v2"]["metrics"]["roc_auc"] == 0.852


def test_a_run_without_comparison_or_drift_still_renders(tmp_path: Path) -> None:
    result = DemoResult(tmp_path / "run")
    result.run_dir.mkdir()
    page = report.write_report(result).read_text()
    assert "(no comparison" in page and "(the drift job did not run)" in page
    assert json.loads((result.run_dir / report.SUMMARY_FILE).read_text())["comparison"] is None


# --- one reduced lifecycle run ----------------------------------------------------------

PHASE_ROWS = 300


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    runs = tmp_path_factory.mktemp("demo") / "runs"
    options = DemoOptions(runs_root=runs, phase_rows=PHASE_ROWS)
    return Lifecycle(options, announce=lambda n, name: None, note=lambda text: None).run()


def test_both_versions_were_scored_on_the_same_held_out_rows(lifecycle: DemoResult) -> None:
    summary = json.loads((lifecycle.run_dir / report.SUMMARY_FILE).read_text())
    held_out = summary["comparison"]["held_out"]
    expected_rows = {"drifted-test": 750, "drifted-traffic": PHASE_ROWS, "normal-test": 750}
    assert {key: data["rows"] for key, data in held_out.items()} == expected_rows
    for key, data in held_out.items():
        v1, v2 = data["scores"]["v1"], data["scores"]["v2"]
        assert v1["rows"] == v2["rows"] == expected_rows[key]
        assert v1["data_sha256"] == v2["data_sha256"]
    # The drifted test rows are v2's own test split, the normal ones v1's: same scores.
    versions = {v["label"]: v["test"] for v in summary["versions"]}
    assert held_out["drifted-test"]["scores"]["v2"]["metrics"] == pytest.approx(versions["v2"])
    assert held_out["normal-test"]["scores"]["v1"]["metrics"] == pytest.approx(versions["v1"])


def test_the_drifted_test_rows_are_customers_neither_version_trained_on(
    lifecycle: DemoResult,
) -> None:
    processed = {v: lifecycle.run_dir / v / "data" / "processed" for v in ("v1", "v2")}
    v1_test, v2_test = (read_channel(processed[v] / "test")[0] for v in ("v1", "v2"))
    unshifted = [c for c in ds.COLUMNS if c not in SHIFTED_FEATURES]
    pd.testing.assert_frame_equal(v1_test[unshifted], v2_test[unshifted])
    assert not v2_test[list(SHIFTED_FEATURES)].equals(v1_test[list(SHIFTED_FEATURES)])


def test_the_report_shows_the_run_comparison_and_links(lifecycle: DemoResult) -> None:
    assert lifecycle.report is not None
    page = lifecycle.report.read_text()
    summary = json.loads((lifecycle.run_dir / report.SUMMARY_FILE).read_text())
    drifted = summary["comparison"]["held_out"]["drifted-test"]["scores"]
    for version in ("v1", "v2"):
        assert f"{version} {drifted[version]['metrics']['roc_auc']:.3f}" in page
    for link in re.findall(r'<a href="([^"]+)"', page):
        assert (lifecycle.run_dir / link).is_file()
    # Each traffic phase's drift page, and each labelled phase's quality page.
    assert set(summary["drift_pages"]) == {"normal", "concept", "drifted"}
    assert {"quality/normal/quality.html", "quality/concept/quality.html"} <= set(
        re.findall(r'<a href="([^"]+)"', page)
    )
    assert not re.search(r"\b(True|False|None)\b", page)
