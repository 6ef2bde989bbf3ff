"""botocore's ``pattern`` strings are Java regular expressions; a few need rewriting for ``re``.

What occurs in the models the kit's requests use, and how it is translated:

- ``\\p{L}``, ``\\p{N}``, ``\\p{Z}``, ``\\p{M}``, ``\\p{S}``, ``\\p{P}`` (Unicode general
  categories, in tag and SageMaker metadata patterns): that category's code points, as ranges, from
  ``unicodedata`` (so they follow this Python's Unicode version, not Java's; ~0.2 s for all of
  them, once per process).
- ``\\p{Alnum}``, ``\\p{Print}`` and the other POSIX classes: their ASCII ranges, as in Java.
- ``\\uD800\\uDC00-\\uDBFF\\uDFFF`` (a UTF-16 surrogate-pair range: the supplementary planes):
  ``\\U00010000-\\U0010FFFF``.
- ``${1,128}`` (a quantified end anchor, which Java allows and Python refuses): ``$``.

Anything else Java-only (``\\P{...}``, class intersection ``&&``, nested classes) raises
``UntranslatablePatternError`` naming the pattern, so a new construct cannot be checked wrongly.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import cache

_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Space": " \\t\\n\\x0b\\f\\r",
    "XDigit": "0-9a-fA-F",
}
# Planes 4-13 are unassigned and 15-16 private use: no letters, marks, digits or spaces.
_ASSIGNED = (range(0x40000), range(0xE0000, 0xF0000))
_SURROGATE_RANGE = re.compile(r"\\uD800\\uDC00-\\uDBFF\\uDFFF", re.IGNORECASE)
_QUANTIFIED_END = re.compile(r"\$\{\d+(,\d*)?\}")
# Python 3.11 reads possessive quantifiers as Java does; these it would read differently.
_JAVA_ONLY = ("&&", "\\P{")


class UntranslatablePatternError(ValueError):
    """A botocore pattern uses a Java construct this module does not translate."""


@cache
def compile_pattern(java: str) -> re.Pattern[str]:
    """The Python equivalent of a botocore (Java) pattern; match it with ``fullmatch``."""
    python = _translate(java)
    try:
        return re.compile(python)
    except re.error as exc:
        raise UntranslatablePatternError(f"pattern {java!r} (as {python!r}): {exc}") from None


def _translate(java: str) -> str:
    for construct in _JAVA_ONLY:
        if construct in java:
            raise UntranslatablePatternError(f"pattern {java!r} uses Java-only {construct!r}")
    text = _SURROGATE_RANGE.sub(r"\\U00010000-\\U0010FFFF", java)
    text = _QUANTIFIED_END.sub("$", text)
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text.startswith("p{", i + 1):
            end = text.index("}", i)
            body = _class_body(text[i + 3 : end], java)
            out.append(body if in_class else f"[{body}]")
            i = end + 1
            continue
        if char == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if char == "[":
            if in_class:
                raise UntranslatablePatternError(f"pattern {java!r} nests character classes")
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


def _class_body(name: str, java: str) -> str:
    if name in _POSIX:
        return _POSIX[name]
    if name and name[0] in "LMNPSZ" and len(name) <= 2:
        return _category_ranges(name)
    raise UntranslatablePatternError(f"pattern {java!r} uses \\p{{{name}}}")


def _category_ranges(category: str) -> str:
    """Every code point whose general category is, or starts with, ``category``, as ranges."""
    return _all_category_ranges().get(category, "")


@cache
def _all_category_ranges() -> dict[str, str]:
    # One pass over the assigned planes for every category (unicodedata is the slow part).
    spans: dict[str, list[list[int]]] = {}
    for point in itertools.chain(*_ASSIGNED):
        full = unicodedata.category(chr(point))
        for category in (full, full[0]):
            runs = spans.setdefault(category, [])
            if runs and runs[-1][1] == point - 1:
                runs[-1][1] = point
            else:
                runs.append([point, point])
    return {c: "".join(_range(low, high) for low, high in runs) for c, runs in spans.items()}


def _range(low: int, high: int) -> str:
    return f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}"
