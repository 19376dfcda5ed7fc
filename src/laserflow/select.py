"""Hyperparameter selection on the validation part, as the original sweep scripts do it.

Only LASER (rank-reduction) configurations compete. A candidate replaces the incumbent if its
validation accuracy is higher, or equal with a lower validation log-loss; candidates are visited
in the original's sweep order, so the first one wins any remaining tie. The chosen
configuration's *test* accuracy and log-loss are reported next to the base model's.
"""

from __future__ import annotations

from .io import LaserflowError

RULE = "max validation accuracy; ties: lower validation log-loss; then the earlier configuration in sweep order"


def select_best(candidates: list[dict]) -> dict:
    """The winning summary among ``candidates`` (run summaries in sweep order)."""
    best = None
    for summary in candidates:
        val = summary["metrics"]["val"]
        if best is None:
            best = summary
            continue
        incumbent = best["metrics"]["val"]
        if val["acc"] > incumbent["acc"] or (val["acc"] == incumbent["acc"] and val["logloss"] < incumbent["logloss"]):
            best = summary
    if best is None:
        raise LaserflowError("no LASER configuration to select from")
    return best


def selection(base: dict, runs: list[dict]) -> dict:
    """The selection record for one (model, dataset): base numbers, the choice and its numbers."""
    laser_runs = [run for run in runs if [edit["intervention"] for edit in run["edits"]] == ["laser"]]
    for run in runs:
        if (run["model"], run["dataset"], run["n_val"]) != (base["model"], base["dataset"], base["n_val"]):
            raise LaserflowError(
                f"run {run['edits']} is for {run['model']}/{run['dataset']} with {run['n_val']} validation items; "
                f"the base is {base['model']}/{base['dataset']} with {base['n_val']}"
            )
    best = select_best(laser_runs)
    edit = best["edits"][0]
    return {
        "model": base["model"],
        "dataset": base["dataset"],
        "rule": RULE,
        "n_items": base["n_items"],
        "n_val": base["n_val"],
        "candidates": len(laser_runs),
        "base": {"val": base["metrics"]["val"], "test": base["metrics"]["test"]},
        "chosen": edit,
        "laser": {"val": best["metrics"]["val"], "test": best["metrics"]["test"]},
    }


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

    record = selection(read_json(base_path), [read_json(path) for path in run_paths])
    info = dataset_info(record["dataset"])
    if dataset_path and info.is_classification:
        record["baselines"] = baselines(read_jsonl(dataset_path), record["n_val"], info.choices)
    record["files"] = {"base": base_path, "chosen": _chosen_path(record, run_paths)}
    write_json(out_path, record)
    return record


def _chosen_path(record: dict, run_paths: list[str]) -> str:
    chosen = record["chosen"]
    suffix = f"/laser/{chosen['tau']}/{chosen['layer']}/{chosen['level']}.json"
    return next(path for path in run_paths if path.endswith(suffix))
