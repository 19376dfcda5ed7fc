"""Hyperparameter selection on the validation part, as the original sweep scripts do it.

Validation is the first ``int(val_fraction · N)`` items of a dataset in its protocol order, test
the rest; metrics are computed per part.

Only LASER (rank-reduction) configurations compete. A candidate replaces the incumbent if its
validation accuracy is higher, or equal with a lower validation log-loss; candidates are visited
in the original's sweep order, so the first one wins any remaining tie. The chosen
configuration's *test* accuracy and log-loss are reported next to the base model's.
"""

from __future__ import annotations

import math

from .io import LaserflowError

RULE = "max validation accuracy; ties: lower validation log-loss; then the earlier configuration in sweep order"


def summary_name(summary: dict) -> str:
    """How messages name a summary: its file, or its configuration."""
    target = summary.get("provenance", {}).get("target")
    return target or ", ".join(f"{edit['intervention']} {edit['tau']} layer {edit['layer']} {edit.get('level', 'none')}"
                               for edit in summary["edits"]) or "the base model"


def check_numbers(summary: dict) -> None:
    """A summary's validation and test accuracy and log-loss are finite numbers (a NaN or infinity
    must never be selected or reported)."""
    if summary["n_val"] == 0:
        raise LaserflowError(f"{summary_name(summary)}: no validation items to select on; raise selection.val_fraction")
    for part in ("val", "test"):
        for key in ("acc", "logloss"):
            value = summary["metrics"][part][key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise LaserflowError(f"{summary_name(summary)}: {part} {key} is {value}; refusing to select from it")


def select_best(candidates: list[dict]) -> int:
    """The position of the winning summary among ``candidates`` (run summaries in sweep order)."""
    best = None
    for position, summary in enumerate(candidates):
        check_numbers(summary)
        val = summary["metrics"]["val"]
        if best is None:
            best = position
            continue
        incumbent = candidates[best]["metrics"]["val"]
        if val["acc"] > incumbent["acc"] or (val["acc"] == incumbent["acc"] and val["logloss"] < incumbent["logloss"]):
            best = position
    if best is None:
        raise LaserflowError("no LASER configuration to select from")
    return best


def is_laser(run: dict) -> bool:
    """Only single LASER (rank-reduction) edits compete in selection."""
    return [edit["intervention"] for edit in run["edits"]] == ["laser"]


def selection(base: dict, runs: list[dict]) -> tuple[dict, int]:
    """The selection record for one (model, dataset) (base numbers, the choice and its numbers),
    and the chosen run's position in ``runs``."""
    for run in runs:
        if (run["model"], run["dataset"], run["n_val"]) != (base["model"], base["dataset"], base["n_val"]):
            raise LaserflowError(
                f"run {run['edits']} is for {run['model']}/{run['dataset']} with {run['n_val']} validation items; "
                f"the base is {base['model']}/{base['dataset']} with {base['n_val']}"
            )
    check_numbers(base)
    candidates = [position for position, run in enumerate(runs) if is_laser(run)]
    chosen = candidates[select_best([runs[position] for position in candidates])] if candidates else None
    if chosen is None:
        raise LaserflowError("no LASER configuration to select from")
    best = runs[chosen]
    record = {
        "model": base["model"],
        "dataset": base["dataset"],
        "rule": RULE,
        "n_items": base["n_items"],
        "n_val": base["n_val"],
        "candidates": len(candidates),
        "base": {"val": base["metrics"]["val"], "test": base["metrics"]["test"]},
        "chosen": best["edits"][0],
        "laser": {"val": best["metrics"]["val"], "test": best["metrics"]["test"]},
    }
    return record, chosen


def baselines(items: list[dict], n_val: int, choices: tuple[str, ...]) -> dict:
    """Accuracy of always answering each choice, on the validation and test parts; the majority
    class is the validation part's most frequent (ties: the first), the minority class the least
    frequent of the others."""

    def acc(part: list[dict], label: int) -> dict:
        return {"n": len(part), "acc": 100.0 * sum(item["label"] == label for item in part) / len(part) if part else None}

    parts = {"val": items[:n_val], "test": items[n_val:]}
    always = {choice: {name: acc(part, label) for name, part in parts.items()} for label, choice in enumerate(choices)}
    counts = [sum(item["label"] == label for item in parts["val"]) for label in range(len(choices))]
    majority = max(range(len(choices)), key=lambda label: (counts[label], -label))
    minority = min((label for label in range(len(choices)) if label != majority), key=lambda label: (counts[label], label))
    return {
        "always": always,
        "majority": {"choice": choices[majority]} | always[choices[majority]],
        "minority": {"choice": choices[minority]} | always[choices[minority]],
    }


def select_files(base_path: str, run_paths: list[str], out_path: str, dataset_path: str | None = None) -> dict:
    """Selection from files: the base summary and the run summaries in sweep order; with the
    processed dataset, the class baselines of classification datasets."""
    from .data.catalog import dataset_info
    from .io import read_json, read_jsonl, write_json

    record, chosen = selection(read_json(base_path), [read_json(path) for path in run_paths])
    info = dataset_info(record["dataset"])
    if dataset_path and info.is_classification:
        record["baselines"] = baselines(read_jsonl(dataset_path), record["n_val"], info.choices)
    record["files"] = {"base": base_path, "chosen": run_paths[chosen]}
    write_json(out_path, record)
    return record


def split_metrics(records: list[dict], n_val: int) -> dict:
    """Accuracy (%) and log-loss on validation (first ``n_val``), test (the rest) and all items."""

    def metrics(part: list[dict]) -> dict:
        if not part:
            return {"n": 0, "acc": None, "logloss": None}
        out = {
            "n": len(part),
            "acc": 100.0 * sum(r["correct"] for r in part) / len(part),
            "logloss": sum(-r["answer_logprob"] / max(1, r["answer_len"]) for r in part) / len(part),
        }
        for key in ("top5", "top10"):
            if key in part[0]:
                out[f"{key}_acc"] = 100.0 * sum(r[key] for r in part) / len(part)
        return out

    return {"val": metrics(records[:n_val]), "test": metrics(records[n_val:]), "all": metrics(records)}


def validation_size(n_items: int, fraction: float = 0.2) -> int:
    """The original's boundary: the first int(0.2·N) items validate, the rest test."""
    return int(fraction * n_items)
