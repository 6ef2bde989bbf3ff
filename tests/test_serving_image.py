"""The handler inside the scikit-learn 1.9-0 image's two real serving stacks.

- single-model (what the kit deploys): sagemaker-containers 2.8.6.post2's Flask worker
  under gunicorn, started as the image starts it, on 127.0.0.1 (tests/sagemaker_image.py);
- multi-model: sagemaker-inference 1.5.5's handler service and Transformer.

Both run in the image's own Python and packages (.venv-container), from the model.tar.gz
the kit builds, with the container environment the stack gives the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sagemaker_image import (
    ImageFilesystem,
    MultiModelServer,
    Reply,
    image_filesystem,
    multi_model_server,
    serving_container,
)
from serving_cases import BAD_INPUTS, HOSTILE_INPUTS, PAYLOADS, Bad, fuzzed_request

from inference import handler
from inference.packaging import build_model_archive, extract_model_archive
from inference.server import free_port
from pipelines.spec import SERVING_ENVIRONMENT


@pytest.fixture(scope="module")
def model_archive(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_archive(model_dir, tmp_path_factory.mktemp("archive") / "model.tar.gz").path


def _image_with_model(tmp: Path, archive: Path) -> ImageFilesystem:
    fs = image_filesystem(tmp)
    extract_model_archive(archive, fs.ml / "model")  # as SageMaker unpacks it into /opt/ml/model
    return fs


@pytest.fixture(scope="module")
def worker(model_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    fs = _image_with_model(tmp_path_factory.mktemp("single-model"), model_archive)
    with (
        serving_container(fs, SERVING_ENVIRONMENT, port=free_port()) as container,
        httpx.Client(base_url=container.url, timeout=60) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def multi_model(
    model_archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MultiModelServer]:
    fs = _image_with_model(tmp_path_factory.mktemp("multi-model"), model_archive)
    with multi_model_server(fs, SERVING_ENVIRONMENT) as server:
        yield server


def _post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> Reply:
    response = client.post("/invocations", content=body, headers=headers)
    return Reply(response.status_code, response.headers.get("content-type"), response.content)


def _probabilities(reply: Reply) -> tuple[list[str], np.ndarray]:
    if (reply.content_type or "").startswith("text/csv"):
        cells = [line.split(",") for line in reply.text.strip().split("\n")]
        return [c[0] for c in cells], np.array([float(c[2]) for c in cells])
    predictions = json.loads(reply.text)["predictions"]
    return [p["label"] for p in predictions], np.array(
        [p["probabilities"]["yes"] for p in predictions]
    )


# --- start-up ----------------------------------------------------------------------------


def test_the_model_server_starts_offline_only_with_the_stacks_serving_environment(
    model_archive: Path, tmp_path: Path
) -> None:
    """At start the image pip-installs code/ as a package. Without an index (a network-
    isolated endpoint) pip's isolated build cannot get setuptools, so the server never
    answers /ping; the stack's environment keeps pip offline on the image's setuptools."""
    without = {k: v for k, v in SERVING_ENVIRONMENT.items() if not k.startswith("PIP_")}
    fs = _image_with_model(tmp_path, model_archive)
    with (
        pytest.raises(RuntimeError, match="InstallModuleError") as failed,
        serving_container(fs, without, port=free_port()),
    ):
        pass
    assert "setuptools" in str(failed.value)


# --- good requests: what the handler answers in process, the image answers too ----------


@pytest.mark.parametrize("accept", ["application/json", "text/csv", None])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_good_requests_are_answered_in_the_single_model_worker(
    worker: httpx.Client,
    serving_model: handler.ServingModel,
    rows: pd.DataFrame,
    payload: str,
    accept: str | None,
) -> None:
    _assert_answers_like_the_handler(
        lambda body, headers: _post(worker, body, headers), serving_model, rows, payload, accept
    )


@pytest.mark.parametrize("accept", ["application/json", "text/csv", None])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_good_requests_are_answered_in_the_multi_model_transformer(
    multi_model: MultiModelServer,
    serving_model: handler.ServingModel,
    rows: pd.DataFrame,
    payload: str,
    accept: str | None,
) -> None:
    _assert_answers_like_the_handler(multi_model.invoke, serving_model, rows, payload, accept)


def _assert_answers_like_the_handler(
    invoke: Callable[[bytes, dict[str, str]], Reply],
    serving_model: handler.ServingModel,
    rows: pd.DataFrame,
    payload: str,
    accept: str | None,
) -> None:
    body, content_type = PAYLOADS[payload](rows)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    headers = {"Content-Type": content_type} | ({"Accept": accept} if accept else {})

    reply = invoke(raw, headers)

    assert reply.status == 200, reply.text
    expected_body, expected_type = handler.transform(serving_model, body, content_type, accept)
    assert (reply.content_type or "").split(";")[0] == expected_type
    labels, probabilities = _probabilities(reply)
    expected = Reply(200, expected_type, expected_body.encode())
    expected_labels, expected_probabilities = _probabilities(expected)
    assert labels == expected_labels
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=2e-6)
    if expected_type == "application/json":
        assert json.loads(reply.text)["model_sha256"] == serving_model.sha256


# --- bad requests: the right 4xx and a message that says what to fix ---------------------
# With the hostile bodies of issue 16 (megabytes of columns, nesting, digits), each under
# SageMaker's 6 MB payload limit: they once held a worker for minutes, or were a 500.
EVERY_BAD_INPUT = [*BAD_INPUTS, *HOSTILE_INPUTS]


@pytest.mark.parametrize("bad", EVERY_BAD_INPUT, ids=lambda b: b.id)
def test_bad_requests_get_their_4xx_in_the_single_model_worker(
    worker: httpx.Client, test_rows: pd.DataFrame, bad: Bad
) -> None:
    reply = _post(worker, bad.payload(test_rows), bad.headers())
    status, says = bad.expected(worker=True)
    assert (reply.status, says in reply.text) == (status, True), reply.text
    assert reply.content_type is not None and reply.content_type.startswith("text/plain")


@pytest.mark.parametrize("bad", EVERY_BAD_INPUT, ids=lambda b: b.id)
def test_bad_requests_get_their_4xx_in_the_multi_model_transformer(
    multi_model: MultiModelServer, test_rows: pd.DataFrame, bad: Bad
) -> None:
    reply = multi_model.invoke(bad.payload(test_rows), bad.headers())
    status, says = bad.expected(worker=False)
    assert (reply.status, says in reply.text) == (status, True), reply.text


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_bodies_that_are_not_utf8_are_400_where_the_toolkits_decode_them(
    worker: httpx.Client, multi_model: MultiModelServer, rows: pd.DataFrame, content_type: str
) -> None:
    # Both toolkits decode exactly these two types before the handler sees the body: the
    # worker replaces bad bytes with U+FFFD, the Transformer raised UnicodeDecodeError.
    body = b"\xe9" + rows.iloc[:2].to_csv(index=False, header=False).encode()
    for reply in (
        _post(worker, body, {"Content-Type": content_type}),
        multi_model.invoke(body, {"Content-Type": content_type}),
    ):
        assert reply.status == 400, reply.text
        assert "body is not UTF-8 text" in reply.text


def test_what_the_fuzz_once_found_is_answered(worker: httpx.Client) -> None:
    # Categories pandas parsed as numbers reached the model's encoder: a 500 from the worker.
    body = b"\x01,\x01,0,\x01,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0"
    reply = _post(worker, body, {"Content-Type": "text/csv", "Accept": "application/json"})
    assert reply.status == 200, reply.text


# --- fuzz: no input is the server's fault ------------------------------------------------


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_requests_never_get_a_5xx_from_the_single_model_worker(
    worker: httpx.Client, test_rows: pd.DataFrame, data: st.DataObject
) -> None:
    body, headers = fuzzed_request(data, test_rows)
    response = worker.post("/invocations", content=body, headers=headers)
    assert response.status_code < 500, (body, headers, response.text)
    assert worker.get("/ping").status_code == 200


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_requests_never_get_a_5xx_from_the_multi_model_transformer(
    multi_model: MultiModelServer, test_rows: pd.DataFrame, data: st.DataObject
) -> None:
    body, headers = fuzzed_request(data, test_rows)
    reply = multi_model.invoke(body, headers)
    assert reply.status < 500, (body, headers, reply.text)
