"""Make the kit's few extra packages importable inside SageMaker's managed containers.

The scikit-learn container ships scikit-learn, pandas, numpy and scipy but not pandera,
smclarify or shap.
Jobs run with network isolation, so nothing can come from PyPI at run time: the code
bundle carries pinned wheels (``wheels/``, see training.packaging) and this installs them
from there. On a laptop or in CI the packages are already installed and this does nothing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

BUNDLE_ROOT = Path(__file__).resolve().parent.parent
# Any one missing installs the bundle's whole requirements file (orjson: the drift job's
# fast capture parsing, which would silently fall back to json without it).
REQUIRED_MODULES = ("pandera", "smclarify", "shap", "orjson")


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def ensure_container_packages(bundle_root: Path = BUNDLE_ROOT) -> None:
    missing = missing_modules()
    if not missing:
        return
    wheels = bundle_root / "wheels"
    requirements = bundle_root / "requirements.txt"
    if not wheels.is_dir() or not requirements.is_file():
        raise ModuleNotFoundError(
            f"{', '.join(missing)} not installed and no bundled wheels at {wheels}; build the "
            "code bundle with a wheelhouse (make wheelhouse) for network-isolated jobs"
        )
    subprocess.run(
        # --no-deps: the requirements list the whole closure beyond what the image ships.
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links",
         str(wheels), "--requirement", str(requirements), "--quiet"],
        check=True,
    )  # fmt: skip
    importlib.invalidate_caches()
