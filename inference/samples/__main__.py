"""``python -m inference.samples [--check]``: rewrite, or verify, the shipped sample requests."""

from __future__ import annotations

import argparse
import sys

from inference.samples import PATH, SAMPLE_ROWS, SPLIT, sample_requests
from training.process import SEED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.samples",
        description=f"Derive {PATH.name} from the shipped dataset and the kit's split.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"Write nothing; exit 1 if {PATH.name} differs from what the code derives.",
    )
    args = parser.parse_args(argv)
    text = sample_requests()
    if args.check:
        current = PATH.read_text(encoding="utf-8") if PATH.exists() else None
        if current != text:
            state = "is missing" if current is None else "is out of date"
            print(
                f"error: {PATH} {state}; regenerate it with python -m inference.samples",
                file=sys.stderr,
            )
            return 1
        print(f"{PATH} is up to date")
        return 0
    PATH.write_text(text, encoding="utf-8", newline="\n")
    print(
        f"wrote {PATH}: the first {SAMPLE_ROWS} rows of the held-out {SPLIT} split "
        f"(seed {SEED}), features only, no churn label"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
