"""One JSON line to a value, faster than ``json.loads`` on the small records capture and
ground truth hold: it skips the encoding sniffing and wrappers (a third of the time)."""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()


def parse_json_line(line: bytes | str) -> Any:
    """``json.loads(line)`` for UTF-8 text holding one value; ValueError otherwise."""
    text = line.decode("utf-8") if isinstance(line, bytes) else line
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
        return json.loads(text)  # leading whitespace, or a real error with its message
    if text[end:].strip():
        raise ValueError("extra data after the JSON value")
    return value
