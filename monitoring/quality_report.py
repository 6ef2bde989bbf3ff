"""The quality report: ``quality.json`` for machines, ``quality.html`` for people, and
``constraint_violations.json`` in Model Monitor's shape.

Model Monitor's model-quality violations (its constraints carry ``"comparison_operator":
"LessThanThreshold"`` for binary classification metrics, and the violation repeats it as
the check type)::

    {"violations": [{"constraint_check_type": "LessThanThreshold",
                     "description": "Metric auc with 0.71 +/- 0.02 was LessThanThreshold '0.89'",
                     "metric_name": "auc"}]}

The threshold written is the baseline less ``--min-drop``: a drop flags only past it, and
only when significant. Bias drift violations go to ``bias/constraint_violations.json`` in
Clarify's own shape (monitoring/bias_drift.py), next to the window's ``bias/analysis.json``.
The page is self-contained (inline CSS and SVG, no scripts) and escapes every value.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.bias_drift import BiasDrift
from monitoring.join import JoinCounts
from monitoring.quality_assess import Assessment, Settings, Status
from monitoring.quality_stats import DropTest

REPORT_VERSION = 1
JSON_FILE = "quality.json"
HTML_FILE = "quality.html"
VIOLATIONS_FILE = "constraint_violations.json"
BIAS_ANALYSIS_FILE = "bias/analysis.json"
BIAS_VIOLATIONS_FILE = "bias/constraint_violations.json"
CHECK_TYPE = "LessThanThreshold"
NO_CAPTURE_LAYOUT = "no_capture_layout"


@dataclass(frozen=True)
class QualityReport:
    capture: str
    ground_truth: str
    baseline: str | None
    evaluation: str
    endpoint: str | None
    start: datetime
    end: datetime
    labels_until: datetime
    settings: Settings
    counts: JoinCounts
    assessment: Assessment
    baseline_metrics: dict[str, float]
    bias: BiasDrift | None
    bias_status: str  # not_configured | measured | insufficient_labels | one_class
    capture_files: int
    label_files: int
    folders: int
    seconds: float

    @property
    def status(self) -> str:
        return NO_CAPTURE_LAYOUT if not self.folders else self.assessment.status

    @property
    def flagged(self) -> list[DropTest]:
        return self.assessment.flagged

    @property
    def summary(self) -> str:
        c = self.counts
        head = (
            f"{c.labelled_records} of {c.capture.records} capture records labelled "
            f"({c.labelled_rows} rows) in {_iso(self.start)} .. {_iso(self.end)}; "
            f"{c.unlabelled_records} unlabelled, {c.orphan_labels} orphan labels, "
            f"{c.duplicate_labels} duplicate labels, {sum(c.labels.malformed.values())} "
            "malformed labels"
        )
        status = self.status
        if status == NO_CAPTURE_LAYOUT:
            verdict = "no capture layout under the capture location"
        elif status == Status.NO_LABELS:
            verdict = "no labelled records, so no quality measured"
        elif status == Status.INSUFFICIENT:
            verdict = (
                f"insufficient labels ({self.assessment.rows} rows, fewer than "
                f"--min-labels {self.settings.min_labels}): measured, not compared"
            )
        elif status == Status.ONE_CLASS:
            verdict = "the labels hold one class only: no AUC, nothing compared"
        elif self.flagged:
            verdict = "quality dropped: " + ", ".join(
                f"{t.metric} {t.baseline:.3f} -> {t.window:.3f} (p={t.p_adjusted:.2g})"
                for t in self.flagged
            )
        else:
            verdict = "no significant quality drop"
        tail = ""
        if self.bias is not None:
            tail = f"; {len(self.bias.violations)} bias violation(s)"
        return f"{head}; {verdict}{tail}"

    def as_dict(self) -> dict[str, Any]:
        a = self.assessment
        return {
            "version": REPORT_VERSION,
            "status": self.status,
            "summary": self.summary,
            "capture": self.capture,
            "ground_truth": self.ground_truth,
            "baseline": self.baseline,
            "evaluation": self.evaluation,
            "endpoint": self.endpoint,
            "window": {
                "start": _iso(self.start),
                "end": _iso(self.end),
                "labels_until": _iso(self.labels_until),
            },
            "settings": {
                "alpha": self.settings.alpha,
                "min_drop": self.settings.min_drop,
                "min_labels": self.settings.min_labels,
                "monitored": list(self.settings.monitored),
                "correction": "holm",
            },
            "files": {
                "capture": self.capture_files,
                "labels": self.label_files,
                "variant_folders": self.folders,
            },
            "counts": self.counts.as_dict(),
            "metrics": {"binary_classification_metrics": a.metrics} if a.metrics else None,
            "calibration": a.calibration.as_dict() if a.calibration else None,
            "baseline_metrics": {k: round(v, 6) for k, v in self.baseline_metrics.items()},
            "tests": [t.as_dict() for t in a.tests],
            "flagged": [t.metric for t in self.flagged],
            "bias": self._bias(),
            "seconds": round(self.seconds, 3),
        }

    def _bias(self) -> dict[str, Any]:
        if self.bias is None:
            return {"status": self.bias_status}
        return {
            "status": self.bias_status,
            "facets": [str(f) for f in self.bias.facets],
            "limits": self.bias.limits,
            "checks": [c.as_dict() for c in self.bias.checks],
            "violations": len(self.bias.violations),
        }


def constraint_violations(report: QualityReport) -> dict[str, Any]:
    margin = report.settings.min_drop
    metrics = report.assessment.metrics or {}

    def spread(metric: str) -> str:
        # Model Monitor's "+/-" is the metric's standard deviation (five 80% resamples,
        # "NaN" under 200 rows), as in the window's metrics.
        value = (metrics.get(metric) or {}).get("standard_deviation", "NaN")
        return f"{value:.2g}" if isinstance(value, float) else str(value)

    return {
        "violations": [
            {
                "constraint_check_type": CHECK_TYPE,
                "description": (
                    f"Metric {t.metric} with {t.window:.6g} +/- {spread(t.metric)} was "
                    f"{CHECK_TYPE} '{t.baseline - margin:.6g}' (baseline {t.baseline:.6g}, "
                    f"one-sided p = {t.p_adjusted:.2g} after Holm)"
                ),
                "metric_name": t.metric,
            }
            for t in report.flagged
        ]
    }


def dumps(document: Any) -> bytes:
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()


def to_json(report: QualityReport) -> bytes:
    return dumps(report.as_dict())


def to_html(report: QualityReport) -> bytes:
    e = html.escape
    counts = report.counts.as_dict()
    count_rows = "".join(
        f"<tr><td>{e(k.replace('_', ' '))}</td><td class=num>{e(_shown(v))}</td></tr>"
        for k, v in counts.items()
    )
    tests = "".join(_test_row(t, report.settings.min_drop) for t in report.assessment.tests)
    tests_table = (
        "<table><thead><tr><th>metric</th><th>baseline</th><th>window</th><th>drop</th>"
        "<th></th><th>std. error</th><th>p</th><th>p (Holm)</th><th>flagged</th></tr></thead>"
        f"<tbody>{tests}</tbody></table>"
        if tests
        else f"<p class=empty>Nothing compared: {e(report.status.replace('_', ' '))}.</p>"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model quality {e(report.endpoint or "")}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{padding:.2em .6em;text-align:left}}
tr.flagged td{{background:#fdecea}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.empty{{color:#a00}}
</style></head><body>
<h1>Model quality{" — " + e(report.endpoint) if report.endpoint else ""}</h1>
<p>{e(report.summary)}</p>
<p>Predictions captured {e(_iso(report.start))} to {e(_iso(report.end))} ({e(report.capture)}),
joined with labels collected until {e(_iso(report.labels_until))} ({e(report.ground_truth)}).
Baseline: {e(report.evaluation)}. A metric is flagged when its one-sided test of a drop, Holm-
corrected across the {len(report.settings.monitored)} monitored metrics, is under
alpha {report.settings.alpha:g} and the drop is at least {report.settings.min_drop:g}.</p>
<h2>Metrics against the baseline</h2>
{tests_table}
<h2>Calibration</h2>
{_calibration(report)}
<h2>Bias drift</h2>
{_bias(report)}
<h2>Join</h2>
<table><tbody>{count_rows}</tbody></table>
</body></html>
"""
    return page.encode()


def _test_row(test: DropTest, min_drop: float) -> str:
    width, height = 160, 12
    scale = max(0.2, 2 * min_drop, abs(test.drop) if math.isfinite(test.drop) else 0.0)
    bar = min(width / 2, abs(test.drop) / scale * width / 2) if math.isfinite(test.drop) else 0
    middle = width / 2
    x = middle if test.drop <= 0 else middle - bar
    mark = middle - min_drop / scale * width / 2
    color = "#c62828" if test.flagged else "#2e7d32"
    svg = (
        f'<svg width="{width}" height="{height}" role="img" aria-label="drop '
        f'{_shown(test.drop)}"><rect width="{width}" height="{height}" fill="#eee"/>'
        f'<rect x="{x:.1f}" width="{bar:.1f}" height="{height}" fill="{color}"/>'
        f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="0" y2="{height}" stroke="#000"/></svg>'
    )
    return (
        f'<tr class="{"flagged" if test.flagged else "ok"}"><td>{html.escape(test.metric)}</td>'
        f"<td class=num>{_shown(test.baseline)}</td><td class=num>{_shown(test.window)}</td>"
        f"<td class=num>{_shown(test.drop)}</td><td>{svg}</td>"
        f"<td class=num>{_shown(test.standard_error)}</td><td class=num>{test.p_value:.3g}</td>"
        f"<td class=num>{test.p_adjusted:.3g}</td><td>{'yes' if test.flagged else 'no'}</td></tr>"
    )


def _calibration(report: QualityReport) -> str:
    calibration = report.assessment.calibration
    if calibration is None:
        return "<p class=empty>No labelled rows.</p>"
    rows = "".join(
        f"<tr><td>{b.low:.1f} to {b.high:.1f}</td><td class=num>{b.count}</td>"
        f"<td class=num>{_shown(b.mean_score)}</td><td class=num>{_shown(b.positive_rate)}</td>"
        "</tr>"
        for b in calibration.bins
    )
    return (
        f"<p>Brier score {calibration.brier:.4f}; expected calibration error "
        f"{calibration.expected_calibration_error:.4f} over {len(calibration.bins)} fixed "
        "score bins (evaluation.json has no calibration to compare them with).</p>"
        "<table><thead><tr><th>score bin</th><th>rows</th><th>mean score</th>"
        f"<th>positive rate</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _bias(report: QualityReport) -> str:
    e = html.escape
    drift = report.bias
    if drift is None:
        return f"<p>Not measured: {e(report.bias_status.replace('_', ' '))}.</p>"
    rows = "".join(
        f'<tr class="{"flagged" if c.violated else "ok"}"><td>{e(c.facet)}='
        f"{e(c.value_or_threshold)}</td><td>{e(c.metric)}</td><td class=num>{_shown(c.value)}"
        f"</td><td class=num>{c.limit:g}</td><td class=num>{c.p_adjusted:.3g}</td>"
        f"<td>{'yes' if c.violated else ('undetermined' if not c.determined else 'no')}</td>"
        "</tr>"
        for c in drift.checks
    )
    values = "".join(
        f"<tr><td>{e(where)}</td><td>{e(metric)}</td><td class=num>{_shown(value)}</td>"
        f"<td>{e(str(error or ''))}</td></tr>"
        for where, metric, value, error in drift.metrics()
    )
    limited = (
        "<table><thead><tr><th>facet</th><th>metric</th><th>value</th><th>limit</th>"
        f"<th>p (Holm)</th><th>violated</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>No --bias-limit set: metrics only.</p>"
    )
    facets = ", ".join(e(str(f)) for f in drift.facets)
    return (
        f"<p>Facets: {facets}. A violation counts when the metric is beyond its limit by more "
        "than chance (bootstrap of the window's counts, Holm-corrected).</p>"
        f"{limited}<table><thead><tr><th>facet</th><th>metric</th><th>value</th>"
        f"<th>why no value</th></tr></thead><tbody>{values}</tbody></table>"
    )


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else "n/a"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
