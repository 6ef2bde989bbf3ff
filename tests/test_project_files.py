"""Reading Pulumi.yaml and stack files the way the Pulumi engine presents them."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.plan.project import SECRET_PLACEHOLDER, ProjectError, load_stack_config


def _write(directory: Path, project: str, stack: str) -> Path:
    (directory / "Pulumi.yaml").write_text(project)
    (directory / "Pulumi.dev.yaml").write_text(stack)
    return directory


def test_values_are_strings_and_objects_are_json(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: demo\nruntime: python\n",
        "config:\n  aws:region: us-east-1\n  mlops:storage:\n    forceDestroy: true\n",
    )
    config = load_stack_config(tmp_path, "dev")
    assert config.values == {"aws:region": "us-east-1", "mlops:storage": '{"forceDestroy": true}'}


def test_project_defaults_apply_and_stack_values_win(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: demo\nruntime: python\nconfig:\n"
        "  aws:region:\n    value: us-west-2\n  mlops:serviceName:\n    default: svc\n",
        "config:\n  aws:region: eu-west-1\n",
    )
    config = load_stack_config(tmp_path, "dev")
    assert config.values["aws:region"] == "eu-west-1"
    assert config.values["mlops:serviceName"] == "svc"


def test_unnamespaced_keys_belong_to_the_project(tmp_path: Path) -> None:
    _write(tmp_path, "name: demo\nruntime: python\n", "config:\n  owner: me\n")
    assert load_stack_config(tmp_path, "dev").values == {"demo:owner": "me"}


def test_secure_values_are_masked_and_marked_secret(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: demo\nruntime: python\n",
        "config:\n  mlops:token:\n    secure: v1:abc\n",
    )
    config = load_stack_config(tmp_path, "dev")
    assert config.values["mlops:token"] == SECRET_PLACEHOLDER
    assert config.secret_keys == ("mlops:token",)


@pytest.mark.parametrize(
    ("project", "stack", "message"),
    [
        ("runtime: python\n", "config: {}\n", "'name' is missing"),
        ("name: demo\n", "- just\n- a list\n", "must be a YAML mapping"),
        ("name: demo\n", "config: [1, 2]\n", "'config' must be a mapping"),
        ("name: [demo\n", "config: {}\n", "Pulumi.yaml is not valid YAML"),
    ],
)
def test_malformed_files_get_a_clear_error(
    tmp_path: Path, project: str, stack: str, message: str
) -> None:
    _write(tmp_path, project, stack)
    with pytest.raises(ProjectError, match=message.replace("[", r"\[")):
        load_stack_config(tmp_path, "dev")
