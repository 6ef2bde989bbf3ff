"""IAM's wildcard matching: ``*`` is any run of characters, ``?`` exactly one."""

from __future__ import annotations

import functools
import re

# An ARN has six colon-separated parts; the last (the resource) may itself contain colons.
ARN_PARTS = 6


@functools.lru_cache(maxsize=4096)
def glob_regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return glob_regex(pattern, ignore_case=ignore_case).match(value) is not None


def split_arn(value: str) -> list[str] | None:
    parts = value.split(":", ARN_PARTS - 1)
    if len(parts) != ARN_PARTS or parts[0] != "arn":
        return None
    return parts


def arn_matches(pattern: str, value: str) -> bool:
    """ArnLike, and the Resource element: each of the first five parts is matched on its
    own (a wildcard never spans a colon there), the resource part as a whole."""
    if pattern == "*":
        return True
    wanted, actual = split_arn(pattern), split_arn(value)
    if wanted is None or actual is None:
        return False
    return all(glob_matches(w, a) for w, a in zip(wanted, actual, strict=True))
