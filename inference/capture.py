"""Data capture in SageMaker's endpoint format, so local and cloud captures read alike.

Each sampled request becomes one JSON line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {...,"mode": "OUTPUT", ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's, if sent>",
                       "inferenceTime": "2026-11-23T10:00:00Z"},
     "eventVersion": "0"}

under ``<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``, the layout SageMaker uses
below the capture S3 prefix. CSV and JSON bodies are stored as text (as an endpoint with
CaptureContentTypeHeader for those types does); anything else is base64.

``inferenceId`` is the caller's ``InferenceId`` (InvokeEndpoint's header
``X-Amzn-SageMaker-Inference-Id``), recorded only when one was sent, between ``eventId`` and
``inferenceTime`` as SageMaker writes it (aws/amazon-sagemaker-examples,
sm-clarify_model_bias_monitor_for_endpoint_json). Model Monitor joins ground truth on it, and
on ``eventId`` when it is absent.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines")
# The request header InvokeEndpoint sends InferenceId in, and the value botocore's
# sagemaker-runtime model allows (shape InferenceId: 1 to 64 characters, pattern
# \A\S[\p{Print}]*\z): printable ASCII, the first character not a space. (\S alone would
# also let a non-ASCII first character through; an HTTP header carries none.)
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
INFERENCE_ID_MAX = 64
_INFERENCE_ID = re.compile(r"[!-~][ -~]*")


class InferenceIdError(ValueError):
    """An InferenceId SageMaker would refuse; the message says why."""


def check_inference_id(value: str) -> str:
    """``value`` if SageMaker accepts it as an InferenceId, else InferenceIdError."""
    if not 1 <= len(value) <= INFERENCE_ID_MAX:
        raise InferenceIdError(
            f"{INFERENCE_ID_HEADER} must be 1 to {INFERENCE_ID_MAX} characters, got {len(value)}"
        )
    if _INFERENCE_ID.fullmatch(value) is None:
        raise InferenceIdError(
            f"{INFERENCE_ID_HEADER} must be printable ASCII with a visible first character "
            f"(SageMaker's InferenceId), got {value[:INFERENCE_ID_MAX]!r}"
        )
    return value


def _encoding(content_type: str) -> str:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in CSV_TYPES:
        return "CSV"
    if media_type in JSON_TYPES:
        return "JSON"
    return "BASE64"


def _payload(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = _encoding(content_type)
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if encoding == "BASE64":
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    *,
    request_body: bytes,
    request_content_type: str,
    response_body: bytes,
    response_content_type: str,
    when: datetime,
    event_id: str,
    inference_id: str | None = None,
) -> dict[str, Any]:
    metadata = {"eventId": event_id}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "captureData": {
            "endpointInput": _payload(request_body, request_content_type, "INPUT"),
            "endpointOutput": _payload(response_body, response_content_type, "OUTPUT"),
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


@dataclass
class CaptureWriter:
    """Appends sampled records; one file per hour, flushed per record so none are lost."""

    root: Path
    endpoint: str = "local-endpoint"
    variant: str = "AllTraffic"
    sampling_percent: int = 100
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sampler: Callable[[], float] = field(default=random.random)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _hour: str | None = field(default=None, init=False, repr=False)
    _handle: IO[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percent <= 100:
            raise ValueError(f"sampling_percent must be 0-100, got {self.sampling_percent}")

    def record(
        self,
        request_body: bytes,
        request_content_type: str,
        response_body: bytes,
        response_content_type: str,
        inference_id: str | None = None,
    ) -> bool:
        """Capture one request/response pair if sampled; True when it was written.

        ``inference_id``: the caller's InferenceId (checked by the caller), or None.
        """
        if self.sampler() * 100 >= self.sampling_percent:
            return False
        when = self.clock()
        line = json.dumps(
            capture_record(
                request_body=request_body,
                request_content_type=request_content_type,
                response_body=response_body,
                response_content_type=response_content_type,
                when=when,
                event_id=str(uuid.uuid4()),
                inference_id=inference_id,
            ),
            separators=(",", ":"),
        )
        with self._lock:
            handle = self._file_for(when)
            handle.write(line + "\n")
            handle.flush()
        return True

    def _file_for(self, when: datetime) -> IO[str]:
        hour = when.astimezone(UTC).strftime("%Y/%m/%d/%H")
        if hour != self._hour or self._handle is None:
            self.close()
            folder = self.root / self.endpoint / self.variant / hour
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{when.strftime('%M-%S-%f')[:-3]}-{uuid.uuid4()}.jsonl"
            self._handle = (folder / name).open("a", encoding="utf-8")
            self._hour = hour
        return self._handle

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
