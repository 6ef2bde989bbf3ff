"""Editing stack files the way people wrote them: round-trip YAML and atomic writes.

`mlops promote` and `mlops stack init` both write `Pulumi.<stack>.yaml`; they share this
so the files look alike and a crash never leaves half a file behind.

Every reader of a stack file (`mlops plan`, `stack init`, `promote`, `rollback`, ...) loads
it through ``load_plain`` or ``round_trip_yaml``, so a hostile or ambiguous file is refused
the same way everywhere: one ``StackYamlError`` naming the file, the line and the fix.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# `.Pulumi.dev.yaml.<8 random>.tmp`: hidden, and named so a sweep can tell them apart from
# anything else (a lock file) next to the stack file. Older writes left no `.tmp` suffix.
TEMPORARY_SUFFIX = ".tmp"
_RANDOM_PART = r"[a-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix


def round_trip_yaml(source: str = "") -> YAML:
    """Keeps comments, key order and quoting; never folds long lines. Its ``load`` refuses
    what ``load_plain`` refuses (``source``, the file name, goes into the messages)."""
    yaml = _CheckedYAML()
    yaml.source = source
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


# --- loading -------------------------------------------------------------------------------

# A stack's config is a few levels deep (config > mlops:serving > deployment > strategy).
# Deeper nesting is refused before PyYAML's composer or json.dumps recurse into it: 20,000
# nested lists overflowed the interpreter's stack.
MAX_DEPTH = 32
# Values once aliases are expanded: a "billion laughs" file is a few lines whose expansion
# exhausts memory when the config is JSON-encoded for the program.
MAX_VALUES = 10_000

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL = (f"{_CORE}{t}" for t in ("str", "int", "float", "bool"))
_NULL, _SEQ, _MAP = (f"{_CORE}{t}" for t in ("null", "seq", "map"))
_TIMESTAMP, _MERGE = f"{_CORE}timestamp", f"{_CORE}merge"
# Plain data only. Every other tag is refused: !!python/* would build objects, and
# !!binary, !!set or custom tags have no meaning in Pulumi config.
_PLAIN_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP})


class StackYamlError(ValueError):
    """A stack file that is not plain, unambiguous YAML data. The message names the file
    (when known), the line, what is wrong and how to fix it. A ValueError, so readers that
    already report unreadable files (promotion.stack_file) report this one too."""


def read_text(path: Path) -> str:
    """The file's text; invalid UTF-8 is refused naming the byte offset (OSError passes)."""
    return decode(path.read_bytes(), path.name)


def decode(data: bytes, source: str = "") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise StackYamlError(
            f"{_where(source, line)}, column {column}: byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start} is not UTF-8 ({exc.reason}); save the file as UTF-8"
        ) from None


def load_file(path: Path) -> Any:
    """``path`` read with ``load_plain``; OSError when it cannot be read at all."""
    return load_plain(read_text(path), path.name)


def load_plain(text: str, source: str = "") -> Any:
    """The document as plain data (str, int, float, bool, None, list, dict), read with
    PyYAML's safe loader. Refused, with the line: syntax errors, any tag beyond the core
    scalars and collections, duplicate or non-text keys, dates, nesting deeper than
    MAX_DEPTH, more than MAX_VALUES values, self-referencing aliases, and a number or
    true/false directly under ``config:`` written in a form YAML changes (``0123`` reads
    as 83, ``yes`` as true): Pulumi hands the program such a value as written."""
    loader = _PlainLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _Checker(loader, source).check(node, (), 1)
        return loader.construct_document(node)
    except pyyaml.YAMLError as exc:
        raise StackYamlError(
            f"{source or 'the stack file'} is not valid YAML: {_describe(exc)}"
        ) from None
    finally:
        loader.dispose()


class _CheckedYAML(YAML):
    """Round-trip YAML that reads the text with ``load_plain`` first, so promotion and
    ``stack init`` refuse exactly what the plan refuses (ruamel alone keeps unknown tags,
    recurses without limit and turns dates into objects json.dumps cannot encode)."""

    source = ""

    def load(self, stream: Any) -> Any:
        if isinstance(stream, Path):
            stream = read_text(stream)
        elif isinstance(stream, bytes):
            stream = decode(stream, self.source)
        elif not isinstance(stream, str):
            stream = stream.read()
            return self.load(stream)
        load_plain(stream, self.source)
        return super().load(stream)


class _PlainLoader(pyyaml.SafeLoader):
    """The safe loader, with a depth limit on its (recursive) composer."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.name = source or "<stack file>"
        self.source = source
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = parent.start_mark if parent is not None else self.get_mark()
                line = mark.line + 1
                raise StackYamlError(
                    f"{_where(self.source, line)}: values nested more than {MAX_DEPTH} "
                    "levels deep; a stack file's config is a few levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Checker:
    """Walks the composed nodes (aliases expanded) before anything is constructed."""

    def __init__(self, loader: _PlainLoader, source: str) -> None:
        self.loader, self.source = loader, source
        self.values = 0
        self.open: set[int] = set()  # collections on the current path: alias cycles

    def check(self, node: Node, path: tuple[str | int, ...], depth: int) -> None:
        self.values += 1
        if self.values > MAX_VALUES:
            self._refuse(
                node,
                f"more than {MAX_VALUES} values once aliases (*name) are expanded; "
                "a stack file holds a few hundred at most",
            )
        if depth > MAX_DEPTH:
            self._refuse(node, f"{_key(path)}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ScalarNode):
            self._scalar(node, path)
            return
        if node.tag not in _PLAIN_TAGS:
            self._refuse_tag(node, path)
        if id(node) in self.open:
            self._refuse(node, f"{_key(path)}: an alias refers to a value that contains it")
        self.open.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.check(item, (*path, index), depth + 1)
        elif isinstance(node, MappingNode):
            self._mapping(node, path, depth)
        self.open.discard(id(node))

    def _mapping(self, node: MappingNode, path: tuple[str | int, ...], depth: int) -> None:
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == _MERGE:  # `<<: *defaults`
                self.check(value, path, depth + 1)
                continue
            if not isinstance(key, ScalarNode) or key.tag != _STR:
                shown = key.value if isinstance(key, ScalarNode) else "a list or mapping"
                self._refuse(
                    key, f"{_key(path)}: the key {shown} is not text; keys are names: quote it"
                )
            line = key.start_mark.line + 1
            if key.value in seen:
                self._refuse(
                    key,
                    f"duplicate key {_key((*path, key.value))} on lines {seen[key.value]} and "
                    f"{line}; only one of them could take effect: delete the other",
                )
            seen[key.value] = line
            self.check(value, (*path, key.value), depth + 1)

    def _scalar(self, node: ScalarNode, path: tuple[str | int, ...]) -> None:
        written = node.value
        if node.tag == _TIMESTAMP:
            self._refuse(
                node,
                f"{_key(path)}: YAML reads {written} as a date, not text; quote it: '{written}'",
            )
        if node.tag not in _PLAIN_TAGS:
            self._refuse_tag(node, path)
        if node.tag == _FLOAT and not math.isfinite(self.loader.construct_object(node)):
            # JSON, and so Pulumi's config objects, have no NaN or infinity.
            self._refuse(node, f"{_key(path)}: {written} is not a finite number")
        top_level = len(path) == 2 and path[0] == "config"
        if top_level and node.style is None and node.tag in (_INT, _FLOAT, _BOOL):
            typed = json.dumps(self.loader.construct_object(node))
            as_written = written.lower() if node.tag == _BOOL else written
            if typed != as_written:
                read = typed if node.tag == _BOOL else f"the number {typed}"
                self._refuse(
                    node,
                    f"{_key(path)}: YAML reads {written} as {read}, not the text Pulumi "
                    f"passes on; quote it: '{written}'",
                )

    def _refuse_tag(self, node: Node, path: tuple[str | int, ...]) -> None:
        tag = node.tag.replace(_CORE, "!!")
        self._refuse(
            node,
            f"{_key(path)}: the tag {tag} is refused; a stack file is plain data (text, "
            "numbers, true/false, lists, mappings) and no tag is ever run: remove it",
        )

    def _refuse(self, node: Node, message: str) -> None:
        raise StackYamlError(f"{_where(self.source, node.start_mark.line + 1)}: {message}")


def _where(source: str, line: int) -> str:
    return f"{source}, line {line}" if source else f"line {line}"


def _key(path: tuple[str | int, ...]) -> str:
    """``mlops:serving.model`` for a path under ``config:``, else the path from the top."""
    parts = path[1:] if len(path) > 1 and path[0] == "config" else path
    if not parts:
        return "the document" if not path else str(path[0])
    shown = str(parts[0])
    for part in parts[1:]:
        shown += f"[{part}]" if isinstance(part, int) else f".{part}"
    return shown


def _describe(exc: pyyaml.YAMLError) -> str:
    """One line from PyYAML's multi-line message (which draws a caret under the text)."""
    if isinstance(exc, pyyaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        if exc.context:
            started = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
            text += f" ({exc.context}{started})"
        return text
    return " ".join(str(exc).split())


def write_atomically(
    path: Path, text: str, *, mode: int | None = None, replace: bool = True
) -> None:
    """Write via a temporary file in the same folder. Without ``replace``, an existing
    ``path`` raises FileExistsError, even one that appeared a moment ago."""
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            # On disk before the rename, so a crash cannot swap in an empty file.
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        if replace:
            os.replace(temporary, path)
        else:
            # link() fails if the path exists: no race can overwrite it.
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files that killed writes of ``path`` left behind (a SIGKILL
    skips ``finally``). Only safe while nothing else writes ``path``: hold its lock."""
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.{_RANDOM_PART}(?:{re.escape(TEMPORARY_SUFFIX)})?"
    )
    removed = []
    for candidate in path.parent.iterdir():
        if pattern.fullmatch(candidate.name) and not candidate.is_dir():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return sorted(removed)
