"""The image's multi-model serving stack without its Java model server, for the tests.

In multi-model mode (SAGEMAKER_MULTI_MODEL) the image runs Multi Model Server, whose Python
workers hand each request to sagemaker-inference's ``DefaultHandlerService`` and its
``Transformer``. This process plays the model server's part: it loads one model through
the real handler service, then reads requests as JSON lines on stdin and writes what the
server would send back as JSON lines on stdout. Only the server's ``Context`` is a stand-in,
with the methods the ``Transformer`` calls. The model's ``code/`` folder goes on sys.path,
where the model server's worker makes the user module importable.

Request:  {"body": "<base64>", "headers": {"Content-Type": ...}}
Response: {"status": 200 or the error status, "content_type": ..., "body": "<base64>"}

Run only with the container virtualenv's Python: ``multi_model.py MODEL_DIR``.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class Context:
    """The parts of the model server's Context that the Transformer uses."""

    def __init__(self, model_dir: str, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [_RequestProcessor(headers)]
        self.status: int | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = code

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.content_type = content_type


def _as_bytes(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def main(model_dir: str) -> int:
    from sagemaker_inference.default_handler_service import DefaultHandlerService

    sys.path.insert(0, f"{model_dir}/code")
    service = DefaultHandlerService()
    service.initialize(Context(model_dir, {}))
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(model_dir, request["headers"])
        (answer,) = service.handle(
            [{"body": bytearray(base64.b64decode(request["body"]))}], context
        )
        response = {
            "status": context.status or 200,
            "content_type": context.content_type,
            "body": base64.b64encode(_as_bytes(answer)).decode("ascii"),
        }
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: multi_model.py MODEL_DIR", file=sys.stderr)
        sys.exit(64)
    sys.exit(main(sys.argv[1]))
