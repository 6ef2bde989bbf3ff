"""Data capture in SageMaker's endpoint format, so local and cloud captures read alike.

Each sampled request becomes one JSON line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {...,"mode": "OUTPUT", ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-11-23T10:00:00Z"},
     "eventVersion": "0"}

under ``<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``, the layout SageMaker uses
below the capture S3 prefix. CSV and JSON bodies are stored as text (as an endpoint with
CaptureContentTypeHeader for those types does); anything else is base64.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines")


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
) -> dict[str, Any]:
    return {
        "captureData": {
            "endpointInput": _payload(request_body, request_content_type, "INPUT"),
            "endpointOutput": _payload(response_body, response_content_type, "OUTPUT"),
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
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
    ) -> bool:
        """Capture one request/response pair if sampled; True when it was written."""
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
