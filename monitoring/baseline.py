"""Load the training baseline (training/baseline.py's ``baseline.json``) from wherever it lives.

Accepted sources: a ``baseline.json`` file, a model directory, a ``model.tar.gz`` (local or
``s3://``), an ``s3://`` baseline file, or a model package ARN, which SageMaker resolves to
its ``ModelDataUrl`` archive. Only ``baseline.json`` (and ``manifest.json`` for the feature
order, when present) are read out of an archive; nothing is extracted to disk.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitoring import served_model
from training import dataset as ds
from training import uri

BASELINE_FILE = "baseline.json"
MANIFEST_FILE = "manifest.json"
SUPPORTED_VERSION = 1
MODEL_PACKAGE_ARN = served_model.MODEL_PACKAGE_ARN


class BaselineError(Exception):
    """The baseline cannot be found or read; a caller error (exit code 2)."""


@dataclass(frozen=True)
class NumericBaseline:
    name: str
    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    # (probability, value) pairs, ascending: the knots of the baseline CDF for KS.
    quantiles: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class CategoricalBaseline:
    name: str
    frequencies: dict[str, float]


FeatureBaseline = NumericBaseline | CategoricalBaseline


@dataclass(frozen=True)
class Baseline:
    source: str
    rows: int
    # Column order of headerless CSV and JSON "instances" rows, as the handler expects.
    feature_order: tuple[str, ...]
    features: dict[str, FeatureBaseline]

    @property
    def numeric(self) -> tuple[NumericBaseline, ...]:
        return tuple(f for f in self.features.values() if isinstance(f, NumericBaseline))

    @property
    def categorical(self) -> tuple[CategoricalBaseline, ...]:
        return tuple(f for f in self.features.values() if isinstance(f, CategoricalBaseline))


def load(source: str, *, region: str | None = None, endpoint_url: str | None = None) -> Baseline:
    if MODEL_PACKAGE_ARN.match(source):
        model_data = _model_package_data_url(source, region, endpoint_url)
        baseline, manifest = _from_archive(_read(model_data, region, endpoint_url), model_data)
    elif source.startswith("arn:"):
        raise BaselineError(f"--baseline {source}: not a SageMaker model package version ARN")
    elif source.endswith((".tar.gz", ".tgz")):
        baseline, manifest = _from_archive(_read(source, region, endpoint_url), source)
    elif not uri.is_s3(source) and Path(source).is_dir():
        baseline = _read(str(Path(source) / BASELINE_FILE), region, endpoint_url)
        manifest_path = Path(source) / MANIFEST_FILE
        manifest = manifest_path.read_bytes() if manifest_path.is_file() else None
    else:
        baseline, manifest = _read(source, region, endpoint_url), None
    return parse(_json(baseline, source), _json(manifest, source) if manifest else None, source)


def parse(document: Any, manifest: Any | None, source: str) -> Baseline:
    if not isinstance(document, dict) or not isinstance(document.get("features"), dict):
        raise BaselineError(f"{source}: not a baseline.json (no 'features' object)")
    if document.get("version") != SUPPORTED_VERSION:
        raise BaselineError(
            f"{source}: baseline version {document.get('version')!r} is not supported "
            f"(expected {SUPPORTED_VERSION})"
        )
    features: dict[str, FeatureBaseline] = {}
    for name, spec in document["features"].items():
        try:
            features[name] = _feature(name, spec)
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{source}: feature {name!r} is malformed ({exc})") from None
    if not features:
        raise BaselineError(f"{source}: the baseline lists no features")
    return Baseline(
        source=source,
        rows=int(document.get("rows", 0)),
        feature_order=_feature_order(features, manifest),
        features=features,
    )


def _feature(name: str, spec: dict[str, Any]) -> FeatureBaseline:
    if spec["type"] == "categorical":
        frequencies = {str(k): float(v) for k, v in spec["frequencies"].items()}
        if not frequencies or not math.isclose(sum(frequencies.values()), 1, abs_tol=1e-6):
            raise ValueError("category frequencies must sum to 1")
        return CategoricalBaseline(name, frequencies)
    if spec["type"] != "numeric":
        raise ValueError(f"unknown type {spec['type']!r}")
    edges = tuple(float(e) for e in spec["histogram"]["edges"])
    proportions = tuple(float(p) for p in spec["histogram"]["proportions"])
    if len(edges) < 2 or len(proportions) != len(edges) - 1:
        raise ValueError("histogram needs len(edges) - 1 proportions")
    if any(b < a for a, b in itertools.pairwise(edges)):
        raise ValueError("histogram edges must ascend")
    quantiles = tuple(sorted((float(q), float(v)) for q, v in spec["quantiles"].items()))
    if len(quantiles) < 2 or not all(math.isfinite(v) for _, v in quantiles):
        raise ValueError("needs at least two finite quantiles")
    return NumericBaseline(name, edges, proportions, quantiles)


def _feature_order(features: dict[str, FeatureBaseline], manifest: Any | None) -> tuple[str, ...]:
    # The manifest records the order the model was trained with; the kit's dataset module
    # gives the same order when no manifest travels with the baseline.
    if isinstance(manifest, dict) and isinstance(manifest.get("features"), dict):
        listed = manifest["features"]
        order = tuple(listed.get("categorical", [])) + tuple(listed.get("numeric", []))
    else:
        order = tuple(name for name in ds.FEATURES if name in features)
    if set(order) != set(features):
        raise BaselineError(
            "the baseline's features do not match the model's feature order: "
            f"{sorted(set(order) ^ set(features))}"
        )
    return order


def _model_package_data_url(arn: str, region: str | None, endpoint_url: str | None) -> str:
    try:
        return served_model.resolve(arn, region=region, endpoint_url=endpoint_url).model_data
    except served_model.ServedModelError as exc:
        raise BaselineError(f"--baseline {exc}") from None


def _read(source: str, region: str | None, endpoint_url: str | None) -> bytes:
    try:
        if uri.is_s3(source):
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError

            client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)
            try:
                return uri.read_bytes(source, s3=client)
            except (ClientError, BotoCoreError, uri.UriError) as exc:
                raise BaselineError(f"--baseline {source}: cannot read it: {exc}") from None
        return Path(source).read_bytes()
    except OSError as exc:
        raise BaselineError(f"--baseline {source}: {exc.strerror or exc}") from None


def _from_archive(data: bytes, source: str) -> tuple[bytes, bytes | None]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            if BASELINE_FILE not in members:
                raise BaselineError(f"{source}: the model archive holds no {BASELINE_FILE}")
            baseline = _extract(tar, members[BASELINE_FILE])
            manifest = _extract(tar, members[MANIFEST_FILE]) if MANIFEST_FILE in members else None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BaselineError(f"{source}: not a readable model.tar.gz ({exc})") from None
    return baseline, manifest


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise BaselineError(f"{member.name} in the model archive is not a regular file")
    return handle.read()


def _json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{source}: baseline is not valid JSON ({exc})") from None
