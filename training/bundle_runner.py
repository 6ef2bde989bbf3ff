"""Processing-job launcher: unpack the code bundle, then run one of its entry points.

SageMaker processing jobs run a single script and mount inputs as plain files; unlike
training jobs they have no toolkit that unpacks ``sourcedir.tar.gz``. The pipeline therefore
mounts the bundle as an input and runs this script, standard library only, as the job's
code::

    python3 bundle_runner.py process.py [entry-point arguments...]

Pulumi uploads it next to the bundle under the same content hash.
"""

from __future__ import annotations

import os
import runpy
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_BUNDLE = Path("/opt/ml/processing/input/bundle/sourcedir.tar.gz")
BUNDLE_ENV = "MLOPS_BUNDLE"
EXIT_USAGE = 64


def unpack(bundle: Path, dest: Path) -> Path:
    # The "data" filter refuses links and paths that escape dest, as training.archive does.
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


def main(argv: list[str]) -> int:
    if not argv or not argv[0].endswith(".py"):
        print("usage: bundle_runner.py ENTRY_POINT.py [ARGS...]", file=sys.stderr)
        return EXIT_USAGE
    entry, args = argv[0], argv[1:]
    bundle = Path(os.environ.get(BUNDLE_ENV, DEFAULT_BUNDLE))
    if not bundle.is_file():
        print(f"error: no code bundle at {bundle}", file=sys.stderr)
        return EXIT_USAGE
    root = unpack(bundle, Path(tempfile.mkdtemp(prefix="bundle-")))
    script = root / entry
    if not script.is_file() or script.parent != root:
        print(f"error: {entry} is not an entry point of {bundle.name}", file=sys.stderr)
        return EXIT_USAGE
    # The entry point imports the bundle's packages and finds its wheels from its own path.
    sys.path.insert(0, str(root))
    sys.argv = [str(script), *args]
    os.chdir(root)
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
