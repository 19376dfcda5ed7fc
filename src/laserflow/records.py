"""Reading result files for the report, with the keys each consumer needs checked up front."""

from __future__ import annotations

import os

from .io import LaserflowError, lookup, read_json

SELECTION_KEYS = (
    "model", "dataset", "candidates", "chosen.tau", "chosen.layer", "chosen.rho",
    "base.val.acc", "base.val.logloss", "base.test.n", "base.test.acc", "base.test.logloss",
    "laser.val.n", "laser.val.acc", "laser.val.logloss", "laser.test.acc", "laser.test.logloss",
)
CHOICE_KEYS = ("model", "dataset", "chosen.tau", "chosen.layer", "chosen.rho", "laser.val.acc")
RUN_KEYS = ("model", "dataset", "edits", "metrics.val.acc", "metrics.val.logloss")
CHOSEN_KEYS = ("model", "dataset", "edits", "metrics.val", "metrics.test.acc", "metrics.test.logloss")
BASE_KEYS = ("model", "dataset", "metrics.val.acc", "metrics.test.logloss")
PROVENANCE_KEYS = ("model", "dataset", "provenance.device", "provenance.dtype", "provenance.software")
ROBUSTNESS_KEYS = ("model", "dataset", "draws", "niter", "base.test.acc", "candidates")
COMPOSE_KEYS = (
    "model", "dataset", "plan.layers", "plan.taus", "edits", "evaluations", "laser.edit",
    "base.val", "base.test", "laser.val", "laser.test", "composite.val", "composite.test",
)
STEP_KEYS = ("step", "layer", "val.acc", "accepted")
ANALYSIS_KEYS = ("model", "dataset", "configuration.tau", "configuration.layer", "configuration.rho",
                 "n_items", "n_val", "variants")


def checked(record: dict, keys: tuple[str, ...], path: str | os.PathLike) -> dict:
    """``record`` (read from ``path``) if it holds every one of ``keys`` (dotted paths)."""
    for key in keys:
        try:
            lookup(record, key)
        except KeyError:
            raise LaserflowError(f"{path}: key '{key}' is missing") from None
    return record


def read_record(path: str | os.PathLike, keys: tuple[str, ...]) -> dict:
    """A JSON result file that holds every one of ``keys``."""
    return checked(read_json(path), keys, path)


def read_selections(paths, chosen_paths=()) -> list[dict]:
    """Selection records with the chosen configuration's test numbers: from the selection itself
    when the search scored every item, otherwise from the chosen configuration's own job
    (``chosen_paths``), whose validation numbers must equal the ones it was chosen by."""
    chosen = {}
    for path in chosen_paths:
        record = read_record(path, CHOSEN_KEYS)
        chosen[(record["model"], record["dataset"])] = (path, record)
    out = []
    for path in paths:
        selection = read_json(path)
        cell = (selection.get("model"), selection.get("dataset"))
        if cell in chosen and "test" not in selection.get("laser", {}):
            chosen_path, record = chosen[cell]
            if record["edits"] != [selection.get("chosen")] or record["metrics"]["val"] != selection["laser"]["val"]:
                raise LaserflowError(f"{chosen_path}: not the configuration {path} chose, or not its validation "
                                     "numbers; rerun the workflow")
            selection["laser"]["test"] = record["metrics"]["test"]
            selection["files"] = selection.get("files", {}) | {"chosen": str(chosen_path)}
        out.append(checked(selection, SELECTION_KEYS, path))
    return out


def read_runs(paths) -> list[dict]:
    return [read_record(path, RUN_KEYS) for path in paths]


def read_provenances(paths) -> list[dict]:
    return [read_record(path, PROVENANCE_KEYS) for path in paths]


def read_robustness(paths) -> list[dict]:
    return [read_record(path, ROBUSTNESS_KEYS) for path in paths]


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
