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
COMPOSE_KEYS = (
    "model", "dataset", "plan.layers", "plan.taus", "edits", "evaluations", "laser.edit",
    "base.val", "base.test", "laser.val", "laser.test", "composite.val", "composite.test",
)
STEP_KEYS = ("step", "layer", "val.acc", "accepted")
ANALYSIS_KEYS = ("model", "dataset", "configuration.tau", "configuration.layer", "configuration.rho",
                 "n_items", "n_val", "variants")


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


def read_composes(paths) -> list[dict]:
    return [read_record(path, COMPOSE_KEYS) for path in paths]


def read_steps(path: str | os.PathLike) -> list[dict]:
    """A composition's steps (JSON Lines), each holding ``STEP_KEYS``."""
    from .io import read_jsonl

    steps = read_jsonl(path)
    for number, step in enumerate(steps, start=1):
        for key in STEP_KEYS:
            try:
                lookup(step, key)
            except KeyError:
                raise LaserflowError(f"{path}: line {number}: key '{key}' is missing") from None
    if not steps:
        raise LaserflowError(f"{path}: no steps")
    return steps
