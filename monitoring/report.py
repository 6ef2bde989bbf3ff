"""The drift report: ``drift.json`` for machines and ``drift.html`` for people.

The page is self-contained (inline CSS and SVG, no scripts or network assets), so it opens
from S3, a laptop or an email attachment alike.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.capture import Counts
from monitoring.statistics import MIN_EXPECTED, DriftRule, FeatureDrift

REPORT_VERSION = 1
JSON_FILE = "drift.json"
HTML_FILE = "drift.html"


@dataclass(frozen=True)
class DriftReport:
    capture: str
    baseline: str
    endpoint: str | None
    start: datetime
    end: datetime
    psi_threshold: float
    ks_alpha: float
    counts: Counts
    features: list[FeatureDrift]
    files: int
    # Variant folders (<endpoint>/<variant>, holding the dated ones) found under capture;
    # 0: no capture layout there at all.
    folders: int
    seconds: float
    correction: str = "holm"
    min_expected: float = MIN_EXPECTED

    @property
    def rule(self) -> DriftRule:
        return DriftRule(self.psi_threshold, self.ks_alpha, self.correction, self.min_expected)

    @property
    def has_records(self) -> bool:
        return bool(self.features)

    @property
    def status(self) -> str:
        if not self.folders:
            return "no_capture_layout"
        return "ok" if self.has_records else "no_records"

    @property
    def drift_score(self) -> float | None:
        """The largest PSI among features whose test is significant; 0 when none is.

        The drift alarm compares this with the PSI threshold, so it fires exactly when a
        feature drifts by the rule: a large PSI that an unchanged window of this size
        scores by chance (state's 51 categories on 200 rows) does not count.
        """
        if not self.has_records:
            return None
        return max((f.psi for f in self.features if f.significant), default=0.0)

    @property
    def max_psi(self) -> float | None:
        """The largest PSI of any feature, significant or not (the drift score before #18)."""
        return max((f.psi for f in self.features), default=None)

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def summary(self) -> str:
        c = self.counts
        head = (
            f"{c.used} capture records ({c.rows} rows) in "
            f"{_iso(self.start)} .. {_iso(self.end)}, {c.malformed_total} malformed"
        )
        if not self.has_records:
            return f"{head}; no records in the window, so no drift score"
        drifted = ", ".join(self.drifted) or "none"
        return f"{head}; drift score {self.drift_score:.4f}, drifted features: {drifted}"

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "version": REPORT_VERSION,
            "status": self.status,
            "summary": self.summary,
            "capture": self.capture,
            "baseline": self.baseline,
            "endpoint": self.endpoint,
            "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "thresholds": {
                "psi": self.psi_threshold,
                "ks_alpha": self.ks_alpha,
                "correction": self.correction,
                "min_expected": self.min_expected,
            },
            "rule": self.rule.describe(),
            "records": {
                "folders": self.folders,
                "files": self.files,
                "lines": c.lines,
                "in_window": c.in_window,
                "outside_window": c.outside_window,
                "used": c.used,
                "rows": c.rows,
                "malformed": c.malformed_total,
                "malformed_by_reason": dict(sorted(c.malformed.items())),
            },
            "drift_score": None if self.drift_score is None else round(self.drift_score, 6),
            "max_psi": None if self.max_psi is None else round(self.max_psi, 6),
            "drifted_features": self.drifted,
            "features": {
                f.name: {**f.as_dict(), "p_below_alpha": f.p_value < self.ks_alpha}
                for f in self.features
            },
            "seconds": round(self.seconds, 3),
        }


def to_json(report: DriftReport) -> bytes:
    return (json.dumps(report.as_dict(), indent=2, allow_nan=False) + "\n").encode()


def to_html(report: DriftReport) -> bytes:
    e = html.escape
    rows = "\n".join(_feature_row(f, report) for f in report.features)
    c = report.counts
    reasons = ", ".join(f"{e(k)}: {v}" for k, v in sorted(c.malformed.items())) or "none"
    table = (
        "<table><thead><tr><th>feature</th><th>type</th><th>PSI</th><th></th>"
        "<th>PSI if unchanged</th><th>test</th><th>p-value</th><th>corrected</th>"
        "<th>rows</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if report.features
        else "<p class=empty>No capture records in the window: nothing to compare.</p>"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report {e(report.endpoint or "")}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.2em .6em;text-align:left}}
tr.drifted td{{background:#fdecea}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.empty{{color:#a00}}
</style></head><body>
<h1>Feature drift{" — " + e(report.endpoint) if report.endpoint else ""}</h1>
<p>{e(report.summary)}</p>
<p>Window {e(_iso(report.start))} to {e(_iso(report.end))}; capture {e(report.capture)};
baseline {e(report.baseline)}. A feature drifts when {e(report.rule.describe())}; the
bar marker is the PSI threshold. "PSI if unchanged" is what a window of this size from the
baseline itself scores on average: PSI near it is chance, not drift. Malformed records by
reason: {reasons}.</p>
{table}
</body></html>
"""
    return page.encode()


def _feature_row(feature: FeatureDrift, report: DriftReport) -> str:
    scale = max(0.5, 2 * report.psi_threshold, report.max_psi or 0.0)
    width, height = 200, 12
    bar = min(width, width * feature.psi / scale)
    mark = width * report.psi_threshold / scale
    color = "#c62828" if feature.drifted else "#2e7d32"
    svg = (
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="PSI {feature.psi:.4f}"><rect width="{width}" height="{height}" '
        f'fill="#eee"/><rect width="{bar:.1f}" height="{height}" fill="{color}"/>'
        f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="0" y2="{height}" stroke="#000"/></svg>'
    )
    return (
        f'<tr class="{"drifted" if feature.drifted else "ok"}"><td>{html.escape(feature.name)}'
        f"</td><td>{feature.kind}</td><td class=num>{feature.psi:.4f}</td><td>{svg}</td>"
        f"<td class=num>{feature.psi_expected:.4f}</td><td>{feature.test}</td>"
        f"<td class=num>{feature.p_value:.3g}</td>"
        f"<td class=num>{feature.p_value_adjusted:.3g}</td><td class=num>{feature.count}</td></tr>"
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
