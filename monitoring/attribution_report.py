"""The attribution-drift report, in the files Model Monitor's explainability monitor writes.

- ``analysis.json``: Clarify's explainability analysis of the window (training.explain);
- ``constraint_violations.json``: AWS, "Model Feature Attribution Drift Violations":
  ``{"version": "1.0", "violations": [{"label", "metric_name": "shap",
  "constraint_check_type": "feature_attribution_drift_check", "description"}]}``, one entry
  per label whose NDCG is below the threshold (no ``feature`` field: the check ranks all);
- ``attribution.json``: the kit's summary (window, records, both rankings, NDCG);
- ``attribution.html``: a self-contained page for people.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.capture import Counts
from training import explain

REPORT_VERSION = 1
JSON_FILE = "attribution.json"
HTML_FILE = "attribution.html"
ANALYSIS_FILE = "analysis.json"
VIOLATIONS_FILE = "constraint_violations.json"
CHECK_TYPE = "feature_attribution_drift_check"
METRIC_NAME = "shap"
VIOLATIONS_VERSION = "1.0"


@dataclass(frozen=True)
class Method:
    """How the window was explained; the baseline must have been explained the same way."""

    ndcg_threshold: float
    max_rows: int
    background_rows: int
    nsamples: int
    seed: int


@dataclass(frozen=True)
class AttributionReport:
    capture: str
    model: str
    explainability: str
    endpoint: str | None
    start: datetime
    end: datetime
    method: Method
    counts: Counts
    baseline: Mapping[str, float]
    # Clarify's analysis of the window's sample; None when the window had no rows.
    analysis: Mapping[str, Any] | None
    files: int
    # Variant folders (<endpoint>/<variant>) found under capture; 0: no capture layout.
    folders: int
    seconds: float

    @property
    def has_records(self) -> bool:
        return self.analysis is not None

    @property
    def explained(self) -> int:
        """Rows explained: a uniform sample of the window's rows, at most max_rows."""
        return min(self.counts.rows, self.method.max_rows) if self.has_records else 0

    @property
    def live(self) -> dict[str, float] | None:
        return None if self.analysis is None else explain.global_attributions(self.analysis)

    @property
    def ndcg(self) -> float | None:
        live = self.live
        return None if live is None else explain.ndcg(self.baseline, live)

    @property
    def drifted(self) -> bool:
        score = self.ndcg
        return score is not None and score < self.method.ndcg_threshold

    @property
    def status(self) -> str:
        if not self.folders:
            return "no_capture_layout"
        return "ok" if self.has_records else "no_records"

    @property
    def summary(self) -> str:
        c = self.counts
        head = (
            f"{c.used} capture records ({c.rows} rows) in {_iso(self.start)} .. "
            f"{_iso(self.end)}, {c.malformed_total} malformed"
        )
        if not self.has_records:
            return f"{head}; no rows in the window, so no attribution ranking"
        verdict = "attribution drift" if self.drifted else "no attribution drift"
        return (
            f"{head}; {self.explained} rows explained, NDCG {self.ndcg:.4f} against "
            f"threshold {self.method.ndcg_threshold:g}: {verdict}"
        )

    def as_dict(self) -> dict[str, Any]:
        c, m, live, score = self.counts, self.method, self.live, self.ndcg
        return {
            "version": REPORT_VERSION,
            "status": self.status,
            "summary": self.summary,
            "capture": self.capture,
            "model": self.model,
            "explainability": self.explainability,
            "endpoint": self.endpoint,
            "window": {"start": _iso(self.start), "end": _iso(self.end)},
            "method": {
                "explainer": explain.METHOD,
                "agg_method": "mean_abs",
                "background_rows": m.background_rows,
                "nsamples": m.nsamples,
                "seed": m.seed,
                "max_rows": m.max_rows,
            },
            "records": {
                "folders": self.folders,
                "files": self.files,
                "lines": c.lines,
                "in_window": c.in_window,
                "outside_window": c.outside_window,
                "used": c.used,
                "rows": c.rows,
                "explained": self.explained,
                "malformed": c.malformed_total,
                "malformed_by_reason": dict(sorted(c.malformed.items())),
            },
            "ndcg": None if score is None else round(score, 6),
            "ndcg_threshold": m.ndcg_threshold,
            "drifted": self.drifted,
            "features": [
                {
                    "name": name,
                    "baseline": round(self.baseline[name], 8),
                    "baseline_rank": rank,
                    "live": None if live is None else round(live[name], 8),
                    "live_rank": None if live is None else _ranks(live)[name],
                }
                for name, rank in _ranks(self.baseline).items()
            ],
            "seconds": round(self.seconds, 3),
        }


def _ranks(values: Mapping[str, float]) -> dict[str, int]:
    ordered = sorted(values, key=lambda name: (-values[name], name))
    return {name: i + 1 for i, name in enumerate(ordered)}


def violations(report: AttributionReport) -> dict[str, Any]:
    found = []
    if report.drifted:
        found.append(
            {
                "label": explain.LABEL,
                "metric_name": METRIC_NAME,
                "constraint_check_type": CHECK_TYPE,
                "description": (
                    f"Feature attribution drift: NDCG {report.ndcg} of the live SHAP ranking "
                    f"is below the threshold {report.method.ndcg_threshold}"
                ),
            }
        )
    return {"version": VIOLATIONS_VERSION, "violations": found}


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()


def files(report: AttributionReport) -> dict[str, bytes]:
    """Every output file's name and content; no analysis.json without rows."""
    out = {
        JSON_FILE: _dump(report.as_dict()),
        VIOLATIONS_FILE: _dump(violations(report)),
        HTML_FILE: to_html(report),
    }
    if report.analysis is not None:
        out[ANALYSIS_FILE] = _dump(report.analysis)
    return out


def to_html(report: AttributionReport) -> bytes:
    e = html.escape
    live = report.live
    baseline_ranks = _ranks(report.baseline)
    live_ranks = _ranks(live) if live is not None else {}
    scale = max([*report.baseline.values(), *(live or {}).values(), 1e-12])
    rows = "\n".join(
        _feature_row(name, report.baseline[name], rank, live, live_ranks, scale)
        for name, rank in baseline_ranks.items()
    )
    score = report.ndcg
    verdict = (
        ""
        if score is None
        else f'<p class="{"drift" if report.drifted else "ok"}">NDCG {score:.4f} '
        f"(threshold {report.method.ndcg_threshold:g}): "
        f"{'the features that drive the model changed' if report.drifted else 'no drift'}.</p>"
    )
    m = report.method
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Attribution drift {e(report.endpoint or "")}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.2em .6em;text-align:left}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.drift{{color:#a00;font-weight:bold}}.ok{{color:#2e7d32}}.empty{{color:#a00}}
</style></head><body>
<h1>Feature attribution drift{" — " + e(report.endpoint) if report.endpoint else ""}</h1>
<p>{e(report.summary)}</p>
{verdict}
<p>Window {e(_iso(report.start))} to {e(_iso(report.end))}; capture {e(report.capture)};
model {e(report.model)}; baseline attributions {e(report.explainability)}. Kernel SHAP of the
positive-class probability, mean |SHAP| per input, {m.nsamples} coalitions per row,
{m.background_rows} background row(s) summarising the rows explained; NDCG weighs the live
ranking by the baseline's attributions. Grey bars: baseline; blue: this window.</p>
{
        f"<table><thead><tr><th>feature</th><th>baseline</th><th>rank</th><th>window</th>"
        f"<th>rank</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if live is not None
        else "<p class=empty>No captured rows in the window: nothing to rank.</p>"
    }
</body></html>
"""
    return page.encode()


def _feature_row(
    name: str,
    baseline: float,
    rank: int,
    live: Mapping[str, float] | None,
    live_ranks: Mapping[str, int],
    scale: float,
) -> str:
    width, height = 200, 8
    value = None if live is None else live[name]
    bars = (
        f'<svg width="{width}" height="{2 * height}" role="img" aria-label="'
        f'baseline {baseline:.4f}, window {value if value is not None else 0:.4f}">'
        f'<rect width="{width * baseline / scale:.1f}" height="{height}" fill="#bbb"/>'
        f'<rect y="{height}" width="{width * (value or 0.0) / scale:.1f}" height="{height}" '
        f'fill="#1565c0"/></svg>'
    )
    return (
        f"<tr><td>{html.escape(name)}</td><td class=num>{baseline:.4f}</td>"
        f"<td class=num>{rank}</td>"
        f"<td class=num>{'' if value is None else f'{value:.4f}'}</td>"
        f"<td class=num>{live_ranks.get(name, '')}</td><td>{bars}</td></tr>"
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
