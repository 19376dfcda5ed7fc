"""Reading result files for the report, with the keys each consumer needs checked up front."""

from __future__ import annotations

import os

from .io import LaserflowError, lookup, read_json

SELECTION_KEYS = (
    "model", "dataset", "candidates", "chosen.tau", "chosen.layer", "chosen.rho",
    "base.val.acc", "base.val.logloss", "base.test.n", "base.test.acc", "base.test.logloss",
    "laser.val.n", "laser.val.acc", "laser.val.logloss", "laser.test.acc", "laser.test.logloss",
)
RUN_KEYS = ("model", "dataset", "edits", "metrics.val.acc", "metrics.test.logloss")
BASE_KEYS = ("model", "dataset", "metrics.val.acc", "metrics.test.logloss")
PROVENANCE_KEYS = ("model", "dataset", "provenance.device", "provenance.dtype", "provenance.software")
ROBUSTNESS_KEYS = ("model", "dataset", "draws", "niter", "base.test.acc", "candidates")


def read_record(path: str | os.PathLike, keys: tuple[str, ...]) -> dict:
    """A JSON result file that holds every one of ``keys`` (dotted paths)."""
    record = read_json(path)
    for key in keys:
        try:
            lookup(record, key)
        except KeyError:
            raise LaserflowError(f"{path}: key '{key}' is missing") from None
    return record


def read_selections(paths) -> list[dict]:
    return [read_record(path, SELECTION_KEYS) for path in paths]


def read_runs(paths) -> list[dict]:
    return [read_record(path, RUN_KEYS) for path in paths]


def read_provenances(paths) -> list[dict]:
    return [read_record(path, PROVENANCE_KEYS) for path in paths]


def read_robustness(paths) -> list[dict]:
    return [read_record(path, ROBUSTNESS_KEYS) for path in paths]
