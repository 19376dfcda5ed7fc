"""SVD-draw sensitivity: how much of a cell's LASER result the SVD draw alone can move.

One job per cell loads the model once and, for the selected configuration (and, with ``top_k``
above 1, the next validation candidates in the selection rule's order), scores every item
(validation and test parts) under the exact truncation and under ``draws`` draws of the
original's randomized SVD: ``torch.svd_lowrank(W.float(), q = kept rank, niter)`` with niter 2
(20 for RoBERTa) after ``torch.manual_seed(seed)``, seeds 0 .. draws − 1, exactly what
``svd.mode: randomized`` with that seed evaluates. Per draw it records the validation and test
accuracy and log-loss and the relative Frobenius distance of the edited matrices to the exact
truncation, ‖W_draw − W_exact‖ / ‖W_exact‖ (0 where the level keeps rank 0: both are zero).
With several candidates it also records which one the selection rule would pick under each
draw (among the redrawn candidates only, each at that draw).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .edits import Edit
from .evaluate import load_job, provenance
from .forward import WeightStates
from .io import LaserflowError, read_json, write_json, write_jsonl
from .laser import describe_edits, edited_parameters
from .paths import SVD
from .scoring import score_states
from .selection import is_laser, rank_candidates, split_metrics, validation_size
from .settings import EvaluationSettings, RobustnessPaths
from .svd import load_svd_cache

log = logging.getLogger(__name__)
RECORD_KEYS = ("index", "correct", "answer_logprob", "answer_len")  # per item and draw, in the records file


@dataclass(frozen=True)
class Candidate:
    """A configuration to redraw."""

    edit: Edit
    file: str  # its run summary
    position: int  # among the cell's LASER configurations in sweep order (selection's tie-break)


def candidates(selection: dict, runs: dict[str, dict], top_k: int, source: str) -> list[Candidate]:
    """The configurations to redraw, best first: the selected one, then (with ``runs``, the
    cell's run summaries by file in sweep order) the next ``top_k`` − 1 by the selection rule."""
    chosen = Edit.from_description(selection["chosen"])
    if top_k == 1:
        return [Candidate(chosen, selection["files"]["chosen"], 0)]
    laser = [(file, run) for file, run in runs.items() if is_laser(run)]
    ranked = [Candidate(Edit.from_description(laser[position][1]["edits"][0]), laser[position][0], position)
              for position in rank_candidates([run for _, run in laser])[:top_k]]
    if not ranked or ranked[0].edit != chosen:
        raise LaserflowError(f"{source}: the selection does not name the best of the cell's runs; rerun the "
                             "select rule")
    return ranked


def relative_distance(weights: dict[str, torch.Tensor], exact: dict[str, torch.Tensor]) -> float:
    """‖W − W_exact‖_F / ‖W_exact‖_F over the edited matrices; 0 when they are equal (rank 0 included)."""
    difference = sum(float(torch.sum((weights[name] - exact[name]) ** 2)) for name in exact) ** 0.5
    return 0.0 if difference == 0 else difference / sum(float(torch.sum(exact[name] ** 2)) for name in exact) ** 0.5


def run_robustness(settings: EvaluationSettings, draws: int, top_k: int, paths: RobustnessPaths) -> dict:
    """Score every item under the exact truncation and ``draws`` randomized draws of each
    candidate; write the per-draw summary and the per-item records."""
    started = time.perf_counter()
    selection = read_json(paths.selection)
    redrawn = candidates(selection, {file: read_json(file) for file in paths.runs}, top_k, paths.selection)
    items, model, tokenizer, family = load_job(settings, paths.model, paths.dataset, paths.manifest)
    n_val = validation_size(len(items), settings.val_fraction)
    svd_files = []
    summaries, records = [], []
    for rank, candidate in enumerate(redrawn, start=1):
        edit = candidate.edit
        cached = [file for file in paths.svd if file == SVD.format(model=settings.model, tau=edit.tau, layer=edit.layer)]
        svd_files += cached
        # The exact truncation and each draw, scored on the same batches; the layers below the
        # edited one run once per batch for all of them.
        states = [edited_parameters(model, family, [edit], load_svd_cache(cached), "exact")]
        states += [edited_parameters(model, family, [edit], None, "randomized", seed) for seed in range(draws)]
        scored = score_states(WeightStates(model, family, states, shared=edit.layer), tokenizer, family, items,
                              settings.scoring, settings.dataset, n_val)
        exact_weights = {name: value.to(torch.float32) for name, value in states[0].items()}
        exact_records = scored[0]
        exact = split_metrics(exact_records, n_val)
        log.info("candidate %d %s: exact val acc %.2f, test acc %.2f", rank, edit.label, exact["val"]["acc"],
                 exact["test"]["acc"])
        records += [{"candidate": rank, "seed": None} | {key: record[key] for key in RECORD_KEYS}
                    for record in exact_records]
        outcomes = []
        for seed, (state, draw_records) in enumerate(zip(states[1:], scored[1:])):
            metrics = split_metrics(draw_records, n_val)
            weights = {name: value.to(torch.float32) for name, value in state.items()}
            outcomes.append({"seed": seed, "val": metrics["val"], "test": metrics["test"],
                             "distance": relative_distance(weights, exact_weights)})
            log.info("candidate %d %s, seed %d: val acc %.2f, test acc %.2f, distance %.4f", rank, edit.label, seed,
                     metrics["val"]["acc"], metrics["test"]["acc"], outcomes[-1]["distance"])
            records += [{"candidate": rank, "seed": seed} | {key: record[key] for key in RECORD_KEYS}
                        for record in draw_records]
        summaries.append({"rank": rank, "file": candidate.file, "edit": describe_edits(model, family, [edit])[0],
                          "exact": {"val": exact["val"], "test": exact["test"]}, "draws": outcomes})
    summary = {
        "model": settings.model,
        "dataset": settings.dataset,
        "family": family.name,
        "n_items": len(items),
        "n_val": n_val,
        "draws": draws,
        "niter": family.randomized_niter,
        "top_k": len(redrawn),
        "base": selection["base"],
        "candidates": summaries,
        "items_file": Path(paths.records).name,
        "provenance": provenance(settings, paths, model, svd_files),
        "timing": {"seconds": round(time.perf_counter() - started, 3)},
    }
    if len(redrawn) > 1:
        summary["selected_under_draws"] = selected_under_draws(redrawn, summaries, draws)
    write_jsonl(paths.records, records)
    write_json(paths.summary, summary)
    return summary


def selected_under_draws(redrawn: list[Candidate], summaries: list[dict], draws: int) -> list[int]:
    """Per seed, the rank of the candidate the selection rule picks among the redrawn candidates
    at that draw (compared in sweep order, as the selection compares them)."""
    in_sweep_order = sorted(range(len(redrawn)), key=lambda index: redrawn[index].position)
    chosen = []
    for seed in range(draws):
        runs = [{"metrics": summaries[index]["draws"][seed]} for index in in_sweep_order]
        chosen.append(summaries[in_sweep_order[rank_candidates(runs)[0]]]["rank"])
    return chosen


def run_job(job: dict) -> dict:
    """One robustness job as plain values (settings, draws, top_k, paths), e.g. sent through the worker."""
    return run_robustness(EvaluationSettings.from_dict(job["settings"]), int(job["draws"]), int(job["top_k"]),
                          RobustnessPaths(**job["paths"] | {key: tuple(job["paths"][key]) for key in ("runs", "svd")}))
