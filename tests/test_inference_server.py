"""The local server: SageMaker's contract over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_cases import fuzzed_request
from typer.testing import CliRunner

from inference.capture import CaptureWriter
from inference.server import MAX_BODY_BYTES, PortInUseError, create_app, load_model, running
from mlops.cli import app as cli_app


@pytest.fixture(scope="module")
def capture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("capture")


@pytest.fixture(scope="module")
def server(model_dir: Path, capture_root: Path) -> Iterator[str]:
    writer = CaptureWriter(capture_root, endpoint="churn-dev", sampling_percent=100)
    with running(create_app(load_model(model_dir), writer)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def test_ping(client: httpx.Client) -> None:
    assert client.get("/ping").status_code == 200


def test_invocations_round_trip_and_are_captured(
    client: httpx.Client, test_rows: pd.DataFrame, capture_root: Path
) -> None:
    body = test_rows.iloc[:4].to_csv(index=False, header=False)
    response = client.post(
        "/invocations", content=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert len(response.text.strip().split("\n")) == 4

    records = [
        json.loads(line)
        for f in capture_root.rglob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    mine = [r for r in records if r["captureData"]["endpointInput"]["data"] == body]
    assert len(mine) == 1
    record = mine[0]
    assert record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": body,
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["data"] == response.text
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    datetime.strptime(record["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ")
    path = next(f for f in capture_root.rglob("*.jsonl"))
    assert path.relative_to(capture_root).parts[:2] == ("churn-dev", "AllTraffic")
    assert len(path.relative_to(capture_root).parts) == 7  # endpoint/variant/yyyy/mm/dd/hh/file


def test_bad_requests_are_4xx_with_the_reason(client: httpx.Client) -> None:
    response = client.post("/invocations", content="1,2", headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert "each row must have 19 values" in response.text
    response = client.post(
        "/invocations", content="{}", headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 415


def test_oversized_bodies_are_413(client: httpx.Client) -> None:
    response = client.post(
        "/invocations", content=b"x" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 413


def test_concurrent_requests_are_all_served(client: httpx.Client, test_rows: pd.DataFrame) -> None:
    bodies = [test_rows.iloc[i : i + 5].to_csv(index=False, header=False) for i in range(0, 160, 5)]

    def call(body: str) -> tuple[int, int]:
        response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
        return response.status_code, len(response.json()["predictions"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, bodies))
    assert results == [(200, 5)] * len(bodies)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_requests_never_get_a_5xx(
    client: httpx.Client, test_rows: pd.DataFrame, data: st.DataObject
) -> None:
    body, headers = fuzzed_request(data, test_rows)
    response = client.post("/invocations", content=body, headers=headers)
    assert response.status_code < 500, (body, headers, response.text)
    assert client.get("/ping").status_code == 200


def test_capture_sampling_zero_writes_nothing(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, sampling_percent=0)
    assert writer.record(b"a", "text/csv", b"b", "text/csv") is False
    assert not list(tmp_path.rglob("*.jsonl"))


def test_capture_encodes_binary_as_base64_and_rolls_hourly(tmp_path: Path) -> None:
    times = iter([datetime(2026, 1, 2, 3, 59, tzinfo=UTC), datetime(2026, 1, 2, 4, 0, tzinfo=UTC)])
    writer = CaptureWriter(tmp_path, endpoint="e", clock=lambda: next(times))
    writer.record(b"\x93NUMPY", "application/x-npy", b"{}", "application/json")
    writer.record(b"1,2", "text/csv", b"ok", "text/csv")
    writer.close()
    files = sorted(tmp_path.rglob("*.jsonl"))
    assert [f.parent.relative_to(tmp_path).as_posix() for f in files] == [
        "e/AllTraffic/2026/01/02/03",
        "e/AllTraffic/2026/01/02/04",
    ]
    first = json.loads(files[0].read_text())
    assert first["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert first["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert first["eventMetadata"]["inferenceTime"] == "2026-01-02T03:59:00Z"


def test_serve_reports_a_port_in_use(model_dir: Path, server: str) -> None:
    port = server.rsplit(":", 1)[1]
    result = CliRunner().invoke(cli_app, ["serve", "--model-dir", str(model_dir), "--port", port])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output


def test_serve_reports_a_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--model-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.output


def test_running_refuses_a_busy_port(model_dir: Path, server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with pytest.raises(PortInUseError), running(create_app(load_model(model_dir)), port=port):
        pass


def test_a_model_archive_can_be_served_directly(
    model_dir: Path, tmp_path: Path, test_rows: pd.DataFrame
) -> None:
    from inference.packaging import build_model_archive

    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    with running(create_app(load_model(archive.path))) as url:
        body = test_rows.iloc[:1].to_csv(index=False)
        response = httpx.post(
            f"{url}/invocations", content=body, headers={"Content-Type": "text/csv"}
        )
    assert response.status_code == 200


def test_multi_worker_server_serves_captures_and_stops_on_ctrl_c(
    model_dir: Path, tmp_path: Path, test_rows: pd.DataFrame
) -> None:
    from inference.process import serve_in_subprocess

    body = test_rows.iloc[:2].to_csv(index=False, header=False)
    headers = {"Content-Type": "text/csv"}
    with (
        serve_in_subprocess(model_dir, workers=2, capture_dir=tmp_path / "capture") as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        statuses = [
            http.post("/invocations", content=body, headers=headers).status_code for _ in range(6)
        ]
    assert statuses == [200] * 6
    assert server.returncode == 0, server.errors  # SIGINT, as Ctrl-C sends, stops it cleanly
    assert "with 2 worker(s)" in server.output
    lines = [
        line for f in (tmp_path / "capture").rglob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert len(lines) == 6
