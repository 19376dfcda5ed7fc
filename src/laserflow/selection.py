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


def rank_candidates(candidates: list[dict]) -> list[int]:
    """The positions of ``candidates`` (run summaries in sweep order) in the selection rule's
    order: higher validation accuracy first, then lower validation log-loss, then sweep order."""
    def key(position: int) -> tuple:
        val = candidates[position]["metrics"]["val"]
        return -val["acc"], val["logloss"], position

    return sorted(range(len(candidates)), key=key)


def improves(val: dict, incumbent: dict) -> bool:
    """Whether validation metrics ``val`` beat ``incumbent``'s: higher accuracy, or the same
    accuracy with a strictly lower log-loss."""
    return val["acc"] > incumbent["acc"] or (val["acc"] == incumbent["acc"] and val["logloss"] < incumbent["logloss"])


def summary_name(summary: dict) -> str:
    """How messages name a summary: its file, or its configuration."""
    target = summary.get("provenance", {}).get("target")
    return target or ", ".join(f"{edit['intervention']} {edit['tau']} layer {edit['layer']} {edit.get('level', 'none')}"
                               for edit in summary["edits"]) or "the base model"


def check_numbers(summary: dict) -> None:
    """A summary's validation and (when scored) test accuracy and log-loss are finite numbers (a
    NaN or infinity must never be selected or reported)."""
    for part in ("val", "test"):
        for key in ("acc", "logloss") if part in summary["metrics"] else ():
            value = summary["metrics"][part][key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise LaserflowError(f"{summary_name(summary)}: {part} {key} is {value}; refusing to select from it")


def select_best(candidates: list[dict]) -> int:
    """The position of the winning summary among ``candidates`` (run summaries in sweep order)."""
    if not candidates:
        raise LaserflowError("no LASER configuration to select from")
    for summary in candidates:
        check_numbers(summary)
    return rank_candidates(candidates)[0]


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
    if base["n_val"] == 0:
        raise LaserflowError(f"{summary_name(base)}: no validation items to select on; raise selection.val_fraction")
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
        # A search that scored validation only gets its test numbers from the chosen configuration's
        # own job (laserflow.records.read_selections).
        "laser": {part: best["metrics"][part] for part in ("val", "test") if part in best["metrics"]},
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
