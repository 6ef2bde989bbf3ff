"""The sample request the kit ships (inference/samples/requests.csv): derived, held out, served."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from conftest import REPO
from setuptools import find_packages

import inference.samples.__main__ as regenerate
from inference import handler
from inference.samples import PATH, SAMPLE_ROWS, sample_requests
from inference.server import create_app, load_model, running
from training import dataset as ds

README_COMMAND = (
    "curl --data-binary @inference/samples/requests.csv -H 'Content-Type: text/csv' "
    "localhost:8080/invocations"
)


@pytest.fixture(scope="module")
def derived() -> str:
    return sample_requests()


def test_the_committed_file_is_what_the_kit_derives(derived: str) -> None:
    assert PATH == REPO / "inference" / "samples" / "requests.csv"
    assert PATH.read_bytes() == derived.encode("utf-8")


def test_it_is_the_head_of_the_held_out_test_split_without_the_label(
    derived: str, processed: Path
) -> None:
    # `processed` is what the processing entry point itself wrote from the shipped dataset.
    test_split = (processed / "test" / "test.csv").read_text().splitlines()
    header, *rows = derived.splitlines()
    assert header.split(",") == list(ds.FEATURES)
    assert ds.TARGET not in header.split(",")
    assert len(rows) == SAMPLE_ROWS
    expected = pd.read_csv(processed / "test" / "test.csv").head(SAMPLE_ROWS)
    assert expected.drop(columns=[ds.TARGET]).to_csv(index=False, lineterminator="\n") == derived
    assert test_split[0].split(",") == [*ds.FEATURES, ds.TARGET]
    # None of the rows was trained on.
    train = pd.read_csv(processed / "train" / "train.csv").loc[:, list(ds.FEATURES)]
    sample = pd.read_csv(PATH)
    assert sample.merge(train, how="inner").empty


def test_check_and_regenerate_through_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "requests.csv"
    monkeypatch.setattr(regenerate, "PATH", target)

    assert regenerate.main(["--check"]) == 1
    assert capsys.readouterr().err == (
        f"error: {target} is missing; regenerate it with python -m inference.samples\n"
    )
    assert not target.exists()

    assert regenerate.main([]) == 0
    assert capsys.readouterr().out == (
        f"wrote {target}: the first 20 rows of the held-out test split (seed 42), features "
        "only, no churn label\n"
    )
    assert target.read_bytes() == PATH.read_bytes()
    assert regenerate.main(["--check"]) == 0

    target.write_text(PATH.read_text().replace("AK,", "AL,", 1))
    assert regenerate.main(["--check"]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert target.read_text() != PATH.read_text()  # --check writes nothing


def test_the_module_runs_as_documented() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inference.samples", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == f"{PATH} is up to date\n"


def test_it_is_package_data() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    packages = find_packages(str(REPO), include=setuptools["packages"]["find"]["include"])
    assert "inference.samples" in packages
    assert PATH.name in setuptools["package-data"]["inference.samples"]


def test_the_handler_predicts_one_row_per_sample_row(serving_model: Any) -> None:
    body = PATH.read_bytes()
    answer, content_type = handler.transform(serving_model, body, "text/csv", "application/json")
    assert content_type == "application/json"
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == SAMPLE_ROWS
    assert {p["label"] for p in predictions} <= {ds.POSITIVE_LABEL, ds.NEGATIVE_LABEL}

    csv_answer, _ = handler.transform(serving_model, body, "text/csv", "text/csv")
    assert len(csv_answer.strip().split("\n")) == SAMPLE_ROWS


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    with running(create_app(load_model(model_dir))) as url:
        yield url


def test_the_local_server_answers_the_sample_with_200(server: str) -> None:
    response = httpx.post(
        f"{server}/invocations",
        content=PATH.read_bytes(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == SAMPLE_ROWS


def test_the_test_split_itself_is_refused_for_its_label(server: str, processed: Path) -> None:
    # Why the sample exists: the obvious file carries the label, an unknown column to serving.
    labelled = (processed / "test" / "test.csv").read_bytes()
    response = httpx.post(
        f"{server}/invocations",
        content=labelled,
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 400
    assert ds.TARGET in response.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_readme_curl_command_works_from_the_repo(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    command = README_COMMAND.replace("localhost:8080", f"localhost:{port}")
    result = subprocess.run(
        ["sh", "-c", f"{command} --silent --show-error --write-out '\\n%{{http_code}}'"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "200", body
    assert len(json.loads(body)["predictions"]) == SAMPLE_ROWS
