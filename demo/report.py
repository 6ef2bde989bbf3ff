"""The run report: one self-contained HTML page with charts, plus the same facts as JSON.

The page has inline CSS and SVG only, no scripts or network assets, so it opens from a laptop,
S3 or an email attachment alike. Its links to the drift job's per-phase pages are relative to
the run folder, so they keep working when the folder is moved.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demo.comparison import HEADLINE_METRIC, Comparison, HeldOutScores
from monitoring.report import HTML_FILE as DRIFT_PAGE

if TYPE_CHECKING:
    from demo.lifecycle import DemoResult

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
# The drift job writes each traffic phase's report under <run>/drift/<phase>/.
DRIFT_FOLDER = "drift"
DRIFT_PHASES = ("normal", "concept", "drifted")
# The quality job's pages, per labelled phase, under <run>/quality/<phase>/.
QUALITY_FOLDER = "quality"
QUALITY_PHASES = ("normal", "concept")
QUALITY_PAGE = "quality.html"
# Each version's evaluation wrote its attributions here, under <run>/<version>/.
ATTRIBUTIONS = "evaluation/explainability/analysis.json"
TOP_FEATURES = 8
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
}
# PSI bars are cut at this many times the threshold, so the threshold stays readable.
PSI_CAP_TIMES_THRESHOLD = 5

# Chart geometry, in px. CHAR_PX is a generous average glyph width at FONT_PX, so labels laid
# out with it fit whatever sans-serif font the browser picks.
FONT_PX, CHAR_PX = 12, 7.2
BAR_PX, BAR_GAP, GROUP_GAP, PLOT_PX, LEGEND_PX, AXIS_PX = 12, 2, 8, 420, 22, 18
# Okabe-Ito colours: told apart with the common colour-vision deficiencies too.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
INK, GRID = "#222", "#ddd"
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h2{margin-top:2em;border-bottom:1px solid #ddd}
.note{color:#555}
svg{display:block;max-width:100%;height:auto;margin:.5em 0}
svg text{font-size:12px;fill:#222}
svg text.value{paint-order:stroke;stroke:#fff;stroke-width:3px}
table{border-collapse:collapse;margin:.5em 0}
td,th{padding:.25em .7em;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid #ccc;white-space:nowrap}
tbody tr.first td{border-top:1px solid #ddd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.small{font-size:13px;color:#555}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
ol.log{font:12px/1.5 ui-monospace,monospace}
.lede{font-size:17px}
"""


def write_report(result: DemoResult) -> Path:
    (result.run_dir / SUMMARY_FILE).write_text(json.dumps(summary(result), indent=2))
    path = result.run_dir / REPORT_FILE
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

    def quality(report: Any) -> dict[str, Any] | None:
        if report is None:
            return None
        return {
            "status": report.status,
            "labelled_records": report.counts.labelled_records,
            "flagged": [t.as_dict() for t in report.flagged],
        }

    comparison = result.comparison
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
        "drift": {
            "normal": drift(result.normal_drift),
            "concept": drift(result.concept_drift),
            "drifted": drift(result.drifted_drift),
        },
        "drift_pages": drift_pages(result.run_dir),
        "quality": {
            "normal": quality(result.normal_quality),
            "concept": quality(result.concept_quality),
        },
        "attributions": {v.label: attributions(result.run_dir, v.label) for v in result.versions},
        "comparison": comparison.as_dict() if comparison else None,
        "alarm_state": result.alarm_state,
        "retraining_started": result.retraining_started,
        "seconds": result.seconds,
    }


def attributions(run_dir: Path, version: str) -> dict[str, float]:
    """A version's global attributions (mean |SHAP|), largest first; {} when it has none."""
    from training import explain

    path = run_dir / version / ATTRIBUTIONS
    if not path.is_file():
        return {}
    values = explain.global_attributions(json.loads(path.read_text()))
    return dict(sorted(values.items(), key=lambda item: (-item[1], item[0])))


def quality_pages(run_dir: Path) -> dict[str, str]:
    pages = {phase: run_dir / QUALITY_FOLDER / phase / QUALITY_PAGE for phase in QUALITY_PHASES}
    return {phase: p.relative_to(run_dir).as_posix() for phase, p in pages.items() if p.is_file()}


def drift_pages(run_dir: Path) -> dict[str, str]:
    """Each phase's drift page that exists, relative to the run folder (where the report is)."""
    pages = {phase: run_dir / DRIFT_FOLDER / phase / DRIFT_PAGE for phase in DRIFT_PHASES}
    return {phase: p.relative_to(run_dir).as_posix() for phase, p in pages.items() if p.is_file()}


# --- charts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One row of a bar chart: a label and one value per series."""

    label: str
    values: Sequence[float]
    key: str = ""  # machine name, in each bar's data-key ("v2 roc_auc"); the label if empty
    bold: bool = False


def bar_chart(
    title: str,
    groups: Sequence[Group],
    series: Sequence[str],
    *,
    top: float | None = None,
    cap: float | None = None,
    threshold: float | None = None,
    fmt: Callable[[float], str] = "{:.3f}".format,
) -> str:
    """Horizontal grouped bars with a legend. The axis ends at ``top`` (else a round number
    above the largest value), cut to ``cap``: longer bars stop there, marked, value written."""
    values = [v for g in groups for v in g.values]
    if not values:
        return "<p>(nothing to show)</p>"
    limit = top or _round_up(max([*values, threshold or 0.0]) * 1.05)
    limit = min(limit, cap) if cap else limit
    cut = max(values) > limit
    label_px = max(len(g.label) * (1.1 if g.bold else 1) for g in groups) * CHAR_PX + 12
    value_px = max(len(fmt(v)) for v in values) * CHAR_PX + 10
    x0 = label_px

    legend = [_swatch(PALETTE[i % len(PALETTE)], name) for i, name in enumerate(series)]
    if threshold is not None:
        legend.append(_swatch("threshold", f"threshold {threshold:g}"))
    if cut:
        legend.append(_swatch("cut", f"bar cut at {limit:g}, true value written"))
    parts, x = [], x0
    for width, markup in legend:
        parts.append(f'<g transform="translate({x:.1f} 4)">{markup}</g>')
        x += width + 16
    width_px = math.ceil(max(x0 + PLOT_PX + value_px, x))

    group_px = len(series) * BAR_PX + (len(series) - 1) * BAR_GAP
    plot_top = LEGEND_PX + 8
    plot_bottom = plot_top + len(groups) * (group_px + GROUP_GAP)
    for tick in _ticks(limit):
        tx = x0 + PLOT_PX * tick / limit
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{plot_top}" y2="{plot_bottom}" '
            f'stroke="{GRID}"/><text x="{tx:.1f}" y="{plot_bottom + 13}" '
            f'text-anchor="middle" fill="#666">{tick:g}</text>'
        )
    for i, group in enumerate(groups):
        y = plot_top + i * (group_px + GROUP_GAP)
        weight = ' font-weight="bold"' if group.bold else ""
        parts.append(
            f'<text x="{x0 - 6:.1f}" y="{y + group_px / 2 + 4:.1f}" text-anchor="end"{weight}>'
            f"{html.escape(group.label)}</text>"
        )
        for j, (name, value) in enumerate(zip(series, group.values, strict=True)):
            parts.append(_bar(group, name, value, PALETTE[j % len(PALETTE)], x0, y, limit, fmt))
            y += BAR_PX + BAR_GAP
    if threshold is not None and threshold <= limit:
        tx = x0 + PLOT_PX * threshold / limit
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{plot_top - 4}" y2="{plot_bottom}" '
            f'stroke="{INK}" stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
    height = plot_bottom + AXIS_PX
    return (
        f'<svg width="{width_px}" height="{height}" viewBox="0 0 {width_px} {height}" '
        f'role="img" aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
    )


def _bar(
    group: Group,
    series: str,
    value: float,
    colour: str,
    x0: float,
    y: float,
    limit: float,
    fmt: Callable[[float], str],
) -> str:
    cut = value > limit
    width = max(0.5, PLOT_PX * min(value, limit) / limit)
    end = x0 + width
    mark = (
        f'<polygon points="{end - 13:.1f},{y + BAR_PX} {end - 9:.1f},{y} {end - 5:.1f},{y} '
        f'{end - 9:.1f},{y + BAR_PX}" fill="#fff"/>'
        if cut
        else ""
    )
    weight = ' font-weight="bold"' if cut else ""
    tip = f"{group.label} ({series}): {fmt(value)}"
    return (
        f'<g data-key="{html.escape(f"{series} {group.key or group.label}")}">'
        f"<title>{html.escape(tip)}</title>"
        f'<rect x="{x0:.1f}" y="{y}" width="{width:.1f}" height="{BAR_PX}" fill="{colour}"/>'
        f'{mark}<text x="{end + 4:.1f}" y="{y + BAR_PX - 2}" class="value"{weight}>'
        f"{html.escape(fmt(value))}</text></g>"
    )


def _swatch(kind: str, label: str) -> tuple[float, str]:
    """A legend entry: its width and markup (a colour, or "threshold" or "cut")."""
    if kind == "threshold":
        sample = (
            f'<line x1="0" x2="18" y1="6" y2="6" stroke="{INK}" stroke-width="1.5" '
            'stroke-dasharray="5 3"/>'
        )
    elif kind == "cut":
        sample = (
            '<rect width="18" height="12" fill="#888"/>'
            '<polygon points="5,12 9,0 12,0 8,12" fill="#fff"/>'
        )
    else:
        sample = f'<rect width="12" height="12" fill="{kind}"/>'
    text = f'<text x="22" y="11" class="legend">{html.escape(label)}</text>'
    return 22 + len(label) * CHAR_PX, sample + text


def _round_up(value: float) -> float:
    """The next round number at or above ``value`` (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    steps = (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
    return next(s * magnitude for s in steps if s * magnitude >= value * (1 - 1e-9))


def _ticks(limit: float) -> list[float]:
    raw = limit / 4
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in (1, 2, 2.5, 5, 10) if s * magnitude >= raw * (1 - 1e-9))
    return [round(i * step, 10) for i in range(int(limit / step + 1e-9) + 1)]


# --- page ------------------------------------------------------------------------------


def _page(result: DemoResult) -> str:
    e = html.escape
    steps = "".join(
        f"<tr><td>{e(name)}</td><td class=num>{seconds:.1f}</td></tr>"
        for name, seconds in result.seconds.items()
    )
    log = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>mlops-kit demo {e(result.run_dir.name)}</title>
<style>{STYLE}</style></head><body>
<h1>MLOps lifecycle on this machine</h1>
<p class="note">Run {e(result.run_dir.name)}. AWS was moto, a local stand-in, at
{e(result.aws_url or "an unknown address")}.</p>
{_facts(result)}
<h2>Model quality per version, each on its own test split</h2>
{_versions(result)}
<h2>v1 and v2 on the same held-out rows</h2>
{_comparison_section(result)}
<h2>Drift per feature (PSI): normal, concept-drift and drifted traffic</h2>
{_drift(result)}
<h2>Concept drift: the same inputs, new labels</h2>
{_concept(result)}
<h2>What drives the model: SHAP attributions</h2>
{_attributions(result)}
<h2>Latency per traffic phase</h2>
<p>Time from sending a request to its answer, as the client measured it.</p>
{_latency(result)}
<h2>What happened</h2>
<details><summary>Step log ({len(result.notes)} lines) and time per stage</summary>
<table><thead><tr><th>Stage</th><th class=num>Seconds</th></tr></thead>
<tbody>{steps}</tbody></table>
<ol class="log">{log}</ol></details>
</body></html>
"""


def _facts(result: DemoResult) -> str:
    e = html.escape
    drifted = result.drifted_drift
    alarm = result.alarm_state or "not evaluated"
    if drifted is not None and drifted.drift_score is not None:
        alarm += (
            f" (the drifted traffic's drift score {drifted.drift_score:.3f}, "
            f"threshold {drifted.psi_threshold:g})"
        )
    retraining = (
        "started: the stack's retrain rule delivered the alarm to its target"
        if result.retraining_started
        else "not started"
    )
    swap = result.during_swap
    facts = [
        ("Serving now", result.served or "nothing"),
        ("Drift alarm", alarm),
        ("Retraining", retraining),
        ("Model swap", f"{swap.sent} requests sent during the swap, {swap.failed} failed"),
    ]
    comparison = result.comparison
    if comparison:
        facts.append(("Same-data comparison", _sentence(comparison.sets[0])))
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    return f'<dl class="facts">{rows}</dl>'


def _versions(result: DemoResult) -> str:
    versions = result.versions
    names = list(versions[0].test_metrics) if versions else []
    groups = [
        Group(_metric(name), [v.test_metrics[name] for v in versions], key=name) for name in names
    ]
    return (
        "<p>Each version's own evaluation, on the test split of the data it was trained on: "
        "the first on the original data, the retrained one on the drifted data. Different rows, "
        "so these bars do not compare the versions; the next section does.</p>"
        + bar_chart("Model quality per version", groups, [v.label for v in versions], top=1.0)
    )


def _comparison_section(result: DemoResult) -> str:
    comparison = result.comparison
    if comparison is None:
        return "<p>(no comparison: the run stopped before the second version)</p>"
    e = html.escape
    sentences = "".join(f"<li>{e(_sentence(s))}</li>" for s in comparison.sets)
    groups = [
        Group(f"{s.data.title} ({s.rows})", [s.value(v) for v in comparison.versions])
        for s in comparison.sets
    ]
    chart = bar_chart(
        f"{_metric(HEADLINE_METRIC)} on the same rows", groups, comparison.versions, top=1.0
    )
    return (
        f"<p>{e(_why(result))} Here the pipeline's evaluation step scored every version on "
        "the same rows, which none of them trained on:</p>"
        f'<ul class="lede">{sentences}</ul>'
        f"<p>{e(_metric(HEADLINE_METRIC))} per set of rows (the number of rows in brackets):</p>"
        f"{chart}{_comparison_table(comparison)}"
    )


def _why(result: DemoResult) -> str:
    """Why the retrained version serves, and why its own test score does not compare."""
    if len(result.versions) < 2:
        return ""
    first, last = result.versions[0], result.versions[-1]
    own = " and ".join(
        f"{v.label} {v.test_metrics[HEADLINE_METRIC]:.3f}"
        for v in (first, last)
        if HEADLINE_METRIC in v.test_metrics
    )
    return (
        f"{last.label} replaced {first.label} because the drift alarm started retraining and "
        f"{last.label} passed the promotion gates, which judge each version on its own test "
        f"split. The {_metric(HEADLINE_METRIC)} above ({own}) comes from different rows, so it "
        "does not say which version is better."
    )


def _comparison_table(comparison: Comparison) -> str:
    e = html.escape
    metrics = list(comparison.sets[0].scores[0].metrics)
    head = "".join(f"<th class=num>{e(_metric(m))}</th>" for m in metrics)
    body = []
    for scored in comparison.sets:
        best = {m: max(s.metrics[m] for s in scored.scores) for m in metrics}
        for i, score in enumerate(scored.scores):
            cells = "".join(
                f"<td class=num>{'<b>' if score.metrics[m] == best[m] else ''}"
                f"{score.metrics[m]:.3f}{'</b>' if score.metrics[m] == best[m] else ''}</td>"
                for m in metrics
            )
            lead = (
                f'<td rowspan="{len(scored.scores)}"><b>{e(scored.data.title)}</b><br>'
                f'<span class="small">{e(scored.data.description)}</span></td>'
                f'<td rowspan="{len(scored.scores)}" class=num>{scored.rows}</td>'
                if i == 0
                else ""
            )
            body.append(
                f'<tr class="{"first" if i == 0 else ""}">{lead}<td>{e(score.version)}</td>'
                f"{cells}</tr>"
            )
    return (
        "<table><thead><tr><th>Rows scored</th><th class=num>Rows</th><th>Version</th>"
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="small">Bold: the better version per set and metric.</p>'
    )


def _sentence(scored: HeldOutScores) -> str:
    ranked = sorted(scored.scores, key=lambda s: s.metrics[HEADLINE_METRIC], reverse=True)
    first, rest = ranked[0], ranked[1:]
    others = ", ".join(f"{s.version} {s.metrics[HEADLINE_METRIC]:.3f}" for s in rest)
    return (
        f"On the same {scored.rows} {scored.data.title}, {first.version} scores "
        f"{_metric(HEADLINE_METRIC)} {first.metrics[HEADLINE_METRIC]:.3f}"
        + (f" vs {others}." if others else ".")
    )


def _drift(result: DemoResult) -> str:
    e = html.escape
    pages = drift_pages(result.run_dir)
    links = ", ".join(
        f'<a href="{e(href)}">{e(phase)} traffic</a>' for phase, href in pages.items()
    )
    intro = (
        "<p>PSI, the population stability index, measures how far a feature's values in the "
        "traffic moved from the training data: 0 means no change."
        + (f" The drift job's own pages, per phase: {links}.</p>" if links else "</p>")
    )
    normal, drifted = result.normal_drift, result.drifted_drift
    if normal is None or drifted is None:
        return intro + "<p>(the drift job did not run)</p>"
    reports = [
        (phase, report)
        for phase, report in zip(DRIFT_PHASES, (normal, result.concept_drift, drifted), strict=True)
        if report is not None
    ]
    threshold = drifted.psi_threshold
    psi = {phase: {f.name: f.psi for f in report.features} for phase, report in reports}
    flagged = {name for _, report in reports for name in report.drifted}
    features = sorted(drifted.features, key=lambda f: (-f.psi, f.name))
    groups = [
        Group(f.name, [psi[phase].get(f.name, 0.0) for phase, _ in reports], bold=f.name in flagged)
        for f in features
    ]
    chart = bar_chart(
        "Drift per feature",
        groups,
        [phase for phase, _ in reports],
        cap=PSI_CAP_TIMES_THRESHOLD * threshold,
        threshold=threshold,
    )
    found = "; ".join(
        f"in the {phase} traffic: {', '.join(report.drifted) or 'none'}"
        for phase, report in reports
    )
    return (
        intro + f"<p>The drift job flags a feature whose PSI reaches the threshold "
        f"({threshold:g}, the dashed line) and whose change is significant (a chi-square "
        f"test, Holm-corrected across features, so small windows do not flag sampling "
        f"noise). Flagged features are bold: {e(found)}.</p>{chart}"
    )


def _concept(result: DemoResult) -> str:
    e = html.escape
    links = ", ".join(
        f'<a href="{e(href)}">{e(phase)}</a>'
        for phase, href in quality_pages(result.run_dir).items()
    )
    intro = (
        "<p>The concept-drift phase sent the normal phase's rows again; only their labels, "
        "arriving later through <code>mlops label</code>, follow a changed world (a service "
        "overhaul and a cheaper international tariff stop one kind of churn, a competitor "
        "starts another). The quality job joins each window's predictions with its labels "
        "and tests each metric for a drop from the model's evaluation (one-sided, "
        "Holm-corrected, at least the minimum drop)."
        + (f" Its pages: {links}.</p>" if links else "</p>")
    )
    rows = []
    for phase in QUALITY_PHASES:
        quality = getattr(result, f"{phase}_quality")
        drift = getattr(result, f"{phase}_drift")
        if quality is None:
            continue
        tests = {t.metric: t for t in quality.assessment.tests}
        auc = tests.get("auc")
        shown = f"{auc.baseline:.3f} → {auc.window:.3f}" if auc else "(not compared)"
        drops = ", ".join(t.metric for t in quality.flagged) or "none"
        drifted = ", ".join(drift.drifted) if drift is not None else "(not run)"
        rows.append(
            f"<tr><td>{e(phase)}</td><td class=num>{quality.counts.labelled_records}</td>"
            f"<td class=num>{e(shown)}</td><td>{e(drops)}</td><td>{e(drifted or 'none')}</td></tr>"
        )
    if not rows:
        return intro + "<p>(the quality job did not run)</p>"
    return (
        intro + "<table><thead><tr><th>Traffic</th><th class=num>Labelled requests</th>"
        "<th class=num>AUC, evaluation → window</th><th>Significant drops</th>"
        "<th>Drifted inputs</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _attributions(result: DemoResult) -> str:
    by_version = {v.label: attributions(result.run_dir, v.label) for v in result.versions}
    by_version = {label: values for label, values in by_version.items() if values}
    if not by_version:
        return "<p>(no attributions: evaluation ran without explainability)</p>"
    first = next(iter(by_version.values()))
    top = list(first)[:TOP_FEATURES]
    groups = [
        Group(name, [values.get(name, 0.0) for values in by_version.values()]) for name in top
    ]
    intro = (
        "<p>Each feature's mean |SHAP value|: how far, on average, it moves a customer's churn "
        "probability from the baseline's (Kernel SHAP, as Clarify computes it, on the test "
        f"split). The top {len(top)} features of {next(iter(by_version))}, per version. The "
        "attribution-drift job compares the live ranking with this one by NDCG.</p>"
    )
    return intro + bar_chart("Attributions per feature", groups, list(by_version))


def _latency(result: DemoResult) -> str:
    phases = [(name, sent) for name, sent in _phases(result) if sent.sent]
    groups = [
        Group(label, [t.percentile(q) for _, t in phases], key=f"p{q}")
        for label, q in (("p50 (median)", 50), ("p95", 95), ("p99", 99))
    ]
    return bar_chart(
        "Latency per traffic phase", groups, [name for name, _ in phases], fmt="{:.1f} ms".format
    )


def _metric(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def _phases(result: DemoResult) -> list[tuple[str, Any]]:
    return [
        ("normal", result.normal),
        ("concept", result.concept),
        ("drifted", result.drifted),
        ("during swap", result.during_swap),
    ]
