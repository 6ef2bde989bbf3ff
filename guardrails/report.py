"""Violations as a rich table, and the one-line verdict under it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table

from guardrails.runner import Violation, has_mandatory


def to_rich(violations: Sequence[Violation]) -> RenderableType:
    if not violations:
        return "[green]policy: no violations[/]"
    table = Table(title="Policy violations", show_lines=True)
    table.add_column("policy")
    table.add_column("level")
    table.add_column("resource")
    table.add_column("message", overflow="fold")
    for v in sorted(violations, key=lambda v: (not v.level.blocks, v.policy, v.urn)):
        style = "bold red" if v.level.blocks else "yellow"
        table.add_row(v.policy, f"[{style}]{v.level.value}[/]", v.name, v.message)
    blocking = sum(v.level.blocks for v in violations)
    verdict = (
        f"[bold red]policy: {blocking} mandatory violation(s)[/]"
        if has_mandatory(violations)
        else f"[yellow]policy: {len(violations)} advisory violation(s), none mandatory[/]"
    )
    return Group(table, verdict)
