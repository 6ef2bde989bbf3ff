"""Inference ids: the caller's InferenceId reaches capture as eventMetadata.inferenceId."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from inference.capture import (
    INFERENCE_ID_HEADER,
    CaptureWriter,
    InferenceIdError,
    capture_record,
    check_inference_id,
)
from inference.server import create_app, running

WHEN = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def _records(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(root.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.fixture
def served(serving_model: Any, tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    writer = CaptureWriter(tmp_path, endpoint="churn-dev")
    with running(create_app(serving_model, writer)) as url, httpx.Client(base_url=url) as client:
        yield client, tmp_path


def test_boto3_sends_inference_id_in_the_header_the_server_reads() -> None:
    # What botocore's sagemaker-runtime model serialises InferenceId into.
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    member = model.operation_model("InvokeEndpoint").input_shape.members["InferenceId"]
    assert member.serialization == {"location": "header", "name": INFERENCE_ID_HEADER}
    assert (member.metadata["min"], member.metadata["max"]) == (1, 64)


def test_a_caller_inference_id_is_captured_next_to_a_fresh_event_id(
    served: tuple[httpx.Client, Path], test_rows: pd.DataFrame
) -> None:
    client, root = served
    body = test_rows.iloc[:2].to_csv(index=False, header=False)
    for inference_id in ("order-17", "order-18"):
        response = client.post(
            "/invocations",
            content=body,
            headers={"Content-Type": "text/csv", INFERENCE_ID_HEADER: inference_id},
        )
        assert response.status_code == 200
    first, second = _records(root)
    assert list(first["eventMetadata"]) == ["eventId", "inferenceId", "inferenceTime"]
    assert [first["eventMetadata"]["inferenceId"], second["eventMetadata"]["inferenceId"]] == [
        "order-17",
        "order-18",
    ]
    assert first["eventMetadata"]["eventId"] != second["eventMetadata"]["eventId"]
    assert len(first["eventMetadata"]["eventId"]) == 36  # a uuid4


def test_without_an_inference_id_capture_has_none(
    served: tuple[httpx.Client, Path], test_rows: pd.DataFrame
) -> None:
    client, root = served
    response = client.post(
        "/invocations",
        content=test_rows.iloc[:1].to_csv(index=False),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200
    (record,) = _records(root)
    assert list(record["eventMetadata"]) == ["eventId", "inferenceTime"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * 65, "must be 1 to 64 characters, got 65"),
        ("tab\there", "must be printable ASCII"),
        ("caf\u00e9", "must be printable ASCII"),
    ],
)
def test_an_invalid_inference_id_is_refused_with_400_and_not_captured(
    served: tuple[httpx.Client, Path], test_rows: pd.DataFrame, value: str, why: str
) -> None:
    client, root = served
    response = client.post(
        "/invocations",
        content=test_rows.iloc[:1].to_csv(index=False),
        headers={
            b"Content-Type": b"text/csv",
            INFERENCE_ID_HEADER.encode(): value.encode("latin-1"),
        },
    )
    assert response.status_code == 400
    assert INFERENCE_ID_HEADER in response.text
    assert why in response.text
    assert _records(root) == []


def test_an_empty_inference_id_header_is_refused(served: tuple[httpx.Client, Path]) -> None:
    client, _ = served
    response = client.post(
        "/invocations", content=b"1", headers={"Content-Type": "text/csv", INFERENCE_ID_HEADER: ""}
    )
    assert response.status_code == 400
    assert "must be 1 to 64 characters, got 0" in response.text


@pytest.mark.parametrize("value", ["0", "a" * 64, "order 17/eu-west-1", "~!@#$%^&*()"])
def test_check_inference_id_accepts_what_sagemaker_accepts(value: str) -> None:
    assert check_inference_id(value) == value


@pytest.mark.parametrize("value", ["", " leading-space", "x" * 65, "new\nline", "\u00e9"])
def test_check_inference_id_refuses_what_sagemaker_refuses(value: str) -> None:
    with pytest.raises(InferenceIdError):
        check_inference_id(value)


def test_capture_record_keeps_its_shape_without_an_inference_id() -> None:
    record = capture_record(
        request_body=b"a,b",
        request_content_type="text/csv",
        response_body=b"no,0.9,0.1\n",
        response_content_type="text/csv",
        when=WHEN,
        event_id="e-1",
    )
    assert record["eventMetadata"] == {"eventId": "e-1", "inferenceTime": "2026-11-24T10:30:00Z"}
    assert record["eventVersion"] == "0"


def test_capture_writer_records_the_inference_id(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, clock=lambda: WHEN)
    assert writer.record(b"1,2", "text/csv", b"no,0.9,0.1\n", "text/csv", inference_id="id-9")
    writer.close()
    (record,) = _records(tmp_path)
    assert record["eventMetadata"]["inferenceId"] == "id-9"
    assert record["eventMetadata"]["inferenceTime"] == "2026-11-24T10:30:00Z"
