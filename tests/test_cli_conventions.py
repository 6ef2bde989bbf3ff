"""What every `mlops` command shares: flags without value types in help, and `--version`."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

import mlops.cli
from mlops.cli import app

MLOPS = Path(sys.executable).with_name("mlops")
VERSION = metadata.version("mlops-kit")
cli = CliRunner()


def _commands() -> Iterator[tuple[list[str], typer.core.TyperCommand | typer.core.TyperGroup]]:
    """Every command and group under `mlops`, with the arguments that reach it."""
    root = typer.main.get_command(app)

    def walk(path: list[str], command: object) -> Iterator[tuple[list[str], object]]:
        yield path, command
        for name, child in sorted(getattr(command, "commands", {}).items()):
            yield from walk([*path, name], child)

    yield from walk([], root)  # type: ignore[misc]


COMMANDS = list(_commands())


def _options(path: list[str], command: object) -> list[TyperOption]:
    ctx = typer.Context(command, info_name="mlops")  # type: ignore[arg-type]
    params = command.get_params(ctx)  # type: ignore[attr-defined]
    return [p for p in params if isinstance(p, TyperOption) and not p.hidden]


def _help(path: list[str]) -> str:
    result = cli.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _row(output: str, option: str) -> str:
    """What follows ``option`` (and its other long names) on its row of the options panel."""
    pattern = re.compile(rf"^│\s+(?:\*\s+)?{re.escape(option)}(?:,--?[\w-]+)*(?=\s)")
    rows = [m for line in output.splitlines() if (m := pattern.match(line))]
    assert len(rows) == 1, f"{option}: {rows}\n{output}"
    return rows[0].string[rows[0].end() :]


def test_the_tree_has_flags_and_valued_options_to_check() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "plan", "train", "serve", "stack", "stack init", "pipeline"} <= names
    flags = [o for path, c in COMMANDS for o in _options(path, c) if o.is_flag]
    valued = [o for path, c in COMMANDS for o in _options(path, c) if not o.is_flag]
    assert len(flags) > len(COMMANDS)  # --help everywhere, plus the commands' own flags
    assert valued


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "mlops")
def test_flags_show_no_type_and_valued_options_keep_theirs(path: list[str]) -> None:
    command = {tuple(p): c for p, c in COMMANDS}[tuple(path)]
    output = _help(path)
    assert "<bool>" not in output
    for option in _options(path, command):
        name = next((o for o in option.opts if o.startswith("--")), option.opts[0])
        after = _row(output, name)
        if option.is_flag or option.count:
            # Straight from the option (or its --no- twin) to the help text: no type cell.
            assert not re.match(r"^(\s+-\w|\s+--no-\S+)*\s+<", after), f"{name}{after}"
        else:
            shown = option.metavar or option.display_type(typer.Context(command))  # type: ignore[arg-type]
            assert f" {shown} " in after, f"{name}{after}"


def test_the_fix_targets_flags_only() -> None:
    command = typer.main.get_command(app).commands["plan"]  # type: ignore[attr-defined]
    ctx = typer.Context(command)
    by_name = {o.name: o for o in _options(["plan"], command)}
    assert by_name["policy"].display_type_rich(ctx) is None
    assert by_name["help"].display_type_rich(ctx) is None
    assert by_name["stack"].display_type_rich(ctx) == "<str>"
    assert by_name["json_file"].display_type_rich(ctx) == "<path>"


def test_importing_the_cli_twice_patches_once() -> None:
    patched = TyperOption.display_type_rich
    mlops.cli._untyped_flags()
    assert TyperOption.display_type_rich is patched


def test_a_real_process_shows_untyped_flags() -> None:
    result = subprocess.run(
        [str(MLOPS), "stack", "init", "--help"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "TERM": "dumb"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert re.search(r"│\s+--force\s+Replace an existing stack file\.", result.stdout)
    assert re.search(r"│\s+--help\s+Show this message and exit\.", result.stdout)
    assert re.search(r"│\s+--tag\s+KEY=VALUE\s+A tag on every resource", result.stdout)


# --- mlops --version -------------------------------------------------------------------------


def test_version_prints_the_installed_version_and_exits_0() -> None:
    result = cli.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"mlops-kit {VERSION}\n"


def test_version_wins_over_a_command_and_is_listed_in_help() -> None:
    result = cli.invoke(app, ["--version", "plan"])
    assert result.exit_code == 0
    assert result.stdout == f"mlops-kit {VERSION}\n"
    assert re.search(r"--version\s+Print the installed mlops-kit version and exit\.", _help([]))
    # Only the root has it.
    assert cli.invoke(app, ["plan", "--version"]).exit_code == 2


def test_version_without_an_installed_package_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mlops.cli.metadata, "version", missing)
    result = cli.invoke(app, ["--version"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: the mlops-kit package is not installed, so it has no version; install it with "
        "`pip install -e .` (make does) and run .venv/bin/mlops\n"
    )


def test_version_from_a_real_process() -> None:
    result = subprocess.run([str(MLOPS), "--version"], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"mlops-kit {VERSION}\n", "")
    assert re.fullmatch(r"mlops-kit \d+\.\d+\.\d+\S*\n", result.stdout)
