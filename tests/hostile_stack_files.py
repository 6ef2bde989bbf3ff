"""Hostile and ambiguous stack files, shared by the tests of every command that reads one.

Each is the repo's ``Pulumi.dev.yaml`` with one change, so the file is otherwise valid and
the refusal can only come from the change. Expected messages are computed from where the
change lands, so a new line in the preset moves the expectation with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = (REPO / "Pulumi.dev.yaml").read_text(encoding="utf-8")
SERVICE = "  mlops:serviceName: churn\n"
# An unsafe loader would run this and exit with 7 instead of refusing the file with 1.
EXIT_IF_RUN = 7


@dataclass(frozen=True)
class HostileFile:
    id: str
    content: bytes
    # `Pulumi.dev.yaml, line N` (or None: no line), then the cause as `mlops plan` says it.
    line: int | None
    says: str
    # What every reader must name, however it words the rest (promotion reads on its own).
    gist: str


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _swap(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def _service(value: str) -> str:
    return _swap(SERVICE, f"  mlops:serviceName: {value}\n")


def _bomb() -> str:
    """Seven lines that expand to 10**7 values."""
    levels = ["  pulumi:l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 7):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        levels.append(f"  pulumi:l{level}: &l{level} [{aliases}]")
    return _swap("config:\n", "config:\n" + "\n".join(levels) + "\n")


def _hostile() -> list[HostileFile]:
    service_line = line_of(BASE, SERVICE)
    serving_line = line_of(BASE, "  mlops:serving:\n")
    kind_line = line_of(BASE, "    kind: serverless\n")
    bad_utf8 = _service("ch\udcffurn").encode("utf-8", "surrogateescape")
    offset = bad_utf8.index(b"\xff")
    column = offset - bad_utf8.rindex(b"\n", 0, offset)
    deep = "[" * 20_000 + "]" * 20_000
    tag = "the tag {} is refused; a stack file is plain data"
    apply, new = "!!python/object/apply:builtins.exit", "!!python/object/new:builtins.SystemExit"
    tagged = [  # (id, the value, the tag the refusal names)
        ("python-object-apply", f"{apply} [{EXIT_IF_RUN}]", apply),
        ("python-name", "!!python/name:os.system", "!!python/name:os.system"),
        ("python-object-new", f"{new} [{EXIT_IF_RUN}]", new),
        ("custom-tag", "!env SERVICE_NAME", "!env"),
    ]
    return [
        *(
            HostileFile(
                case,
                _service(value).encode(),
                service_line,
                "mlops:serviceName: " + tag.format(t),
                t,
            )
            for case, value, t in tagged
        ),
        HostileFile(
            "lists-20000-deep",
            _swap(SERVICE, f"{SERVICE}  mlops:deep: {deep}\n").encode(),
            service_line + 1,
            "values nested more than 32 levels deep",
            "nested more than 32 levels deep",
        ),
        HostileFile(
            "date-as-service-name",
            _service("2024-01-01").encode(),
            service_line,
            "mlops:serviceName: YAML reads 2024-01-01 as a date, not text; quote it: '2024-01-01'",
            "YAML reads 2024-01-01 as a date",
        ),
        HostileFile(
            "date-in-a-section",
            _swap(
                "    team: ml-platform\n", "    team: ml-platform\n    since: 2024-01-01\n"
            ).encode(),
            line_of(BASE, "    team: ml-platform\n") + 1,
            "mlops:tags.since: YAML reads 2024-01-01 as a date, not text; quote it: '2024-01-01'",
            "mlops:tags.since: YAML reads 2024-01-01 as a date",
        ),
        HostileFile(
            "octal-account-id",
            _swap(SERVICE, f"{SERVICE}  mlops:accountId: 012345670123\n").encode(),
            service_line + 1,
            "mlops:accountId: YAML reads 012345670123 as the number 1402433619, not the text "
            "Pulumi passes on; quote it: '012345670123'",
            "YAML reads 012345670123 as the number 1402433619",
        ),
        HostileFile(
            "invalid-utf8",
            bad_utf8,
            None,
            f"Pulumi.dev.yaml, line {service_line}, column {column}: byte 0xff at offset "
            f"{offset} is not UTF-8 (invalid start byte); save the file as UTF-8",
            "0xff",
        ),
        HostileFile(
            "duplicate-key",
            _swap(SERVICE, f"{SERVICE}  mlops:serviceName: fraud\n").encode(),
            service_line + 1,
            f"duplicate key mlops:serviceName on lines {service_line} and {service_line + 1}; "
            "only one of them could take effect: delete the other",
            f"duplicate key mlops:serviceName on lines {service_line} and {service_line + 1}",
        ),
        HostileFile(
            "duplicate-nested-key",
            _swap("  mlops:serving:\n", "  mlops:serving:\n    kind: instance\n").encode(),
            kind_line + 1,
            f"duplicate key mlops:serving.kind on lines {serving_line + 1} and {kind_line + 1}"
            "; only one of them could take effect: delete the other",
            f"duplicate key mlops:serving.kind on lines {serving_line + 1} and {kind_line + 1}",
        ),
        HostileFile(
            "alias-bomb",
            _bomb().encode(),
            line_of(_bomb(), "  pulumi:l0:"),  # where the 10,001st value is defined
            "more than 10000 values once aliases (*name) are expanded",
            "more than 10000 values",
        ),
        HostileFile(
            "alias-cycle",
            _swap("config:\n", "config:\n  pulumi:cycle: &c [*c]\n").encode(),
            line_of(BASE, "config:\n") + 1,
            "pulumi:cycle[0]: an alias refers to a value that contains it",
            "an alias refers to a value that contains it",
        ),
        HostileFile(
            "number-as-key",
            _swap("config:\n", "config:\n  1: one\n").encode(),
            line_of(BASE, "config:\n") + 1,
            "config: the key 1 is not text; keys are names: quote it",
            "the key 1 is not text",
        ),
        HostileFile(
            "not-a-mapping",
            b"- config\n",
            None,
            "Pulumi.dev.yaml must be a YAML mapping at the top level",
            "mapping at the top level",
        ),
    ]


HOSTILE = _hostile()


def expected(hostile: HostileFile, name: str = "Pulumi.dev.yaml") -> str:
    """How the message `mlops plan` gives starts, after `error: `."""
    if hostile.line is None:
        return hostile.says
    return f"{name}, line {hostile.line}: {hostile.says}"


# 300 characters: longer than any AWS name allows, and than a file name may be (255).
LONG_STACK = "a" * 300
LONG_STACK_SAYS = (
    "stack name: stack name 'aaaaaaaaaaaaaaaaaaaaaaaa...' (300 characters) cannot be used in "
    "AWS resource names: use up to 32 lowercase letters, digits and hyphens"
)
