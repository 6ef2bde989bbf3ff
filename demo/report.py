"""The run report: one self-contained HTML page with charts, plus the same facts as JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from demo.lifecycle import DemoResult

BAR_HEIGHT, LABEL_WIDTH, CHART_WIDTH = 16, 220, 360


def write_report(result: DemoResult) -> Path:
    (result.run_dir / "summary.json").write_text(json.dumps(summary(result), indent=2))
    path = result.run_dir / "report.html"
    path.write_text(_page(result), encoding="utf-8")
    return path


def summary(result: DemoResult) -> dict[str, Any]:
    def drift(report: Any) -> dict[str, Any] | None:
        if report is None:
            return None
        counts = report.counts
        return {
            "score": report.drift_score,
            "drifted": report.drifted,
            "records": counts.used,
            "rows": counts.rows,
            "malformed": counts.malformed_total,
        }

    return {
        "run": str(result.run_dir),
        "versions": [
            {"label": v.label, "package": v.package_arn, "test": v.test_metrics}
            for v in result.versions
        ],
        "served": result.served,
        "traffic": {
            name: {
                "sent": t.sent,
                "failed": t.failed,
                "p50_ms": t.percentile(50),
                "p99_ms": t.percentile(99),
            }
            for name, t in _phases(result)
        },
        "drift": {"normal": drift(result.normal_drift), "drifted": drift(result.drifted_drift)},
        "alarm_state": result.alarm_state,
        "retraining_started": result.retraining_started,
        "seconds": result.seconds,
    }


def _page(result: DemoResult) -> str:
    versions = result.versions
    metric_names = list(versions[0].test_metrics) if versions else []
    metric_rows = [
        (f"{v.label} {name}", v.test_metrics[name]) for name in metric_names for v in versions
    ]
    drift_rows: list[tuple[str, float]] = []
    threshold = 0.0
    if result.normal_drift and result.drifted_drift:
        threshold = result.drifted_drift.psi_threshold
        normal = {f.name: f.psi for f in result.normal_drift.features}
        for feature in result.drifted_drift.features:
            drift_rows.append((f"{feature.name} (normal)", normal.get(feature.name, 0.0)))
            drift_rows.append((f"{feature.name} (drifted)", feature.psi))
    latency_rows = [
        (f"{name} p{q}", t.percentile(q)) for name, t in _phases(result) for q in (50, 95, 99)
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mlops-kit demo {html.escape(result.run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
h2{{margin-top:2em}} .note{{color:#555}} svg text{{font-size:12px}}</style></head><body>
<h1>MLOps lifecycle on this machine</h1>
<p class="note">Run {html.escape(result.run_dir.name)};
AWS was moto at {html.escape(result.aws_url)}.
Serving now: {html.escape(result.served)}. Drift alarm: {html.escape(result.alarm_state)};
retraining started: {result.retraining_started}.</p>
<h2>Model quality per version (test split)</h2>{_bars(metric_rows, 1.0)}
<h2>Drift per feature (PSI), normal vs drifted traffic</h2>{_bars(drift_rows, None, threshold)}
<h2>Latency (ms)</h2>{_bars(latency_rows, None)}
<h2>What happened</h2><ol>{notes}</ol>
</body></html>
"""


def _bars(rows: Sequence[tuple[str, float]], scale: float | None, line: float = 0.0) -> str:
    if not rows:
        return "<p>(nothing to show)</p>"
    top = scale or max(max(v for _, v in rows), line, 1e-9)
    height = BAR_HEIGHT * len(rows) + 10
    parts = []
    for i, (label, value) in enumerate(rows):
        y = i * BAR_HEIGHT + 5
        width = max(1.0, CHART_WIDTH * value / top)
        colour = "#c0392b" if line and value >= line else "#2e86c1"
        text_y = y + 12
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{text_y}" text-anchor="end">'
            f"{html.escape(label)}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width:.1f}" height="{BAR_HEIGHT - 4}" '
            f'fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{text_y}">{value:.3f}</text>'
        )
    if line:
        x = LABEL_WIDTH + CHART_WIDTH * line / top
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#c0392b" '
            f'stroke-dasharray="4"/><text x="{x + 3:.1f}" y="{height - 2}">threshold {line}</text>'
        )
    total = LABEL_WIDTH + CHART_WIDTH + 80
    return f'<svg width="{total}" height="{height}" role="img">{"".join(parts)}</svg>'


def _phases(result: DemoResult) -> list[tuple[str, Any]]:
    return [
        ("normal", result.normal),
        ("drifted", result.drifted),
        ("during swap", result.during_swap),
    ]
