"""``mlops plan``: what `pulumi up` would create for a stack, offline, with the guardrails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops.commands.common import ProjectDirOption, console, fail


def plan(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. dev.")],
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write every resource's type, name, parent and inputs."),
    ] = None,
    project_dir: ProjectDirOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Skip the tree.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    policy: Annotated[
        bool,
        typer.Option("--policy", help="Check the guardrails; exit 1 on a mandatory violation."),
    ] = False,
    policy_config: Annotated[
        Path | None,
        typer.Option(
            "--policy-config",
            help="Guardrail levels and parameters (JSON/YAML, as --policy-pack-config); "
            "implies --policy.",
        ),
    ] = None,
) -> None:
    """Show what `pulumi up` would create for STACK, without AWS or the Pulumi CLI."""
    from guardrails import PolicyConfig, PolicyConfigError, check_plan, has_mandatory
    from guardrails import load_policy_config as load_guardrails_config
    from guardrails.report import to_rich as guardrails_report
    from infra.config.loader import ConfigError
    from infra.plan.project import ProjectError, find_project_dir, load_stack_config
    from infra.plan.render import to_json, to_rich
    from infra.plan.runner import PlanError, plan_config

    try:
        guardrails = load_guardrails_config(policy_config) if policy_config else PolicyConfig()
    except PolicyConfigError as exc:
        fail(str(exc))
    # Read the stack file on its own: a bad file is never reported as the program failing.
    try:
        config = load_stack_config(find_project_dir(project_dir or Path.cwd()), stack)
    except (ProjectError, ConfigError) as exc:
        fail(str(exc))
    try:
        result = plan_config(config)
    except (ProjectError, ConfigError, PlanError) as exc:
        fail(str(exc))
    except Exception as exc:  # the program's own failure: report it, not our stack frames
        if debug:
            raise
        fail(f"the Pulumi program failed: {type(exc).__name__}: {exc} (rerun with --debug)")

    if not quiet:
        console.print(to_rich(result))
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(to_json(result), encoding="utf-8")
        console.print(f"wrote {len(result.resources)} resources to {json_file}")
    if policy or policy_config is not None:
        violations = check_plan(result, guardrails)
        console.print(guardrails_report(violations))
        if has_mandatory(violations):
            raise typer.Exit(code=1)
