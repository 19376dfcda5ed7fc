"""What the higher-order singular components of a matrix store (the paper's Fig. 4): the dataset
scored with one matrix replaced by its lowest singular components only, beside the unmodified
model and LASER (the top components).

For a matrix W = U diag(S) Vh of rank n (the smaller side) and a share k, the bottom-only matrix
keeps the last c = floor(k·n + 0.5) components (``bottom_count``): W − W_(n−c), where W_r is the
rank-r truncation of the cached exact SVD, so k = 1 gives W itself and a top-r LASER matrix plus
the bottom n − r components give W back. A (τ, ℓ) that selects several matrices has each one
replaced by its own bottom part. The analysis always uses the exact SVD, whatever ``svd.mode``.

Per item and model variant (base, LASER, bottom-only at each share): the top-1 ``prediction``
``scoring.score_items`` records (the next or mask token, the chosen label, the generated text)
and whether it is correct. Per variant, over the whole dataset:
- accuracy (validation, test, all);
- the generic-answer share: the % of its predictions among the generic answers, which are the
  base model's ``generic_top`` most frequent predictions over the dataset (lower-cased and
  stripped; equal counts in order of first appearance);
- the mean pairwise cosine similarity of the final hidden states over all pairs of distinct
  items: the base model's last output (last layer, after the final norm: what the language-model
  head reads) at the position the item's prediction is read from (the prompt's last token, or
  its mask), taken from the same rows, tokenization and right padding as scoring.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass

import torch

from .data.catalog import dataset_info
from .edits import Edit
from .evaluate import load_job, provenance
from .forward import WeightStates, pad, resolve_batch_size, run_batched
from .io import LaserflowError, write_json, write_jsonl
from .laser import describe_edits, edited_parameters, matrix_of, select_targets, truncate, with_matrix
from .paths import SVD
from .records import CHOICE_KEYS, read_record
from .scoring import describe_scoring, plan_items, score_states
from .selection import split_metrics, validation_size
from .settings import EvaluationSettings
from .svd import load_svd_cache
from .sweep import entry_edit

log = logging.getLogger(__name__)

COSINE = ("mean cosine similarity over all pairs of distinct items of the final hidden states (last layer, "
          "after the final norm) at the position each prediction is read from")


def bottom_count(share: float, rank: int) -> int:
    """How many of the lowest singular components a share k of rank n keeps: floor(k·n + 0.5)."""
    count = math.floor(share * rank + 0.5)
    if count < 1:
        raise LaserflowError(f"analysis.shares: a share of {share:g} of rank {rank} keeps no component")
    return count


def bottom_weight(weight: torch.Tensor, factors: dict[str, torch.Tensor], count: int) -> torch.Tensor:
    """W − W_(n−count) in float32: the matrix from its last ``count`` singular components."""
    return weight.detach().to(torch.float32) - truncate(factors, len(factors["S"]) - count)


def bottom_values(model, family, edit: Edit, factors: dict, share: float) -> tuple[dict, dict[str, int]]:
    """Each matrix (τ, ℓ) selects, replaced by its bottom-``share`` part (computed on the CPU in
    float32), as new parameter values (their dtype and device), and the components kept per matrix."""
    values, kept = {}, {}
    for target, param in select_targets(model, family, edit.tau, edit.layer):
        current = values.get(target.parameter, param.data).to("cpu")
        kept[target.key] = bottom_count(share, len(factors[target.key]["S"]))
        bottom = bottom_weight(matrix_of(current, target), factors[target.key], kept[target.key])
        values[target.parameter] = with_matrix(current, target, bottom).to(param.device, param.dtype)
    return values, kept


def _prediction_row(plan: dict) -> int:
    """The row an item's prediction is read from: its fill masks, its labels, its answer or its
    first choice."""
    for key in ("fill", "labels", "loss"):
        if key in plan:
            return plan[key]
    return plan["choices"][0]


def final_hidden_states(weights: WeightStates, pad_id: int, rows: list, parts: list[int], batch_size: int | str,
                        show_progress: bool = False) -> list[torch.Tensor]:
    """Per weight state, [items, hidden] float32: the last hidden state at each row's first read
    position, in the batches scoring runs (length-sorted within each part, right-padded)."""
    device = next(weights.model.parameters()).device

    def step(batch):
        ids, mask = pad([row.ids for row in batch], pad_id, left=False, device=device)
        cols = torch.tensor([row.positions[0] for row in batch], device=device)
        at = torch.arange(len(batch), device=device)
        per_state = weights.run(ids, mask, lambda hidden: list(hidden[at, cols].float().cpu()))
        return [[states[number] for states in per_state] for number in range(len(batch))]

    with torch.inference_mode():
        found = run_batched(rows, [len(row.ids) for row in rows], parts, resolve_batch_size(batch_size, device), step,
                            show_progress, "final hidden states")
    return [torch.stack([row[state] for row in found]) for state in range(len(weights.states))]


def mean_pairwise_cosine(hidden: torch.Tensor) -> float:
    """Mean cosine similarity over the pairs of distinct rows: (|Σ u_i|² − Σ |u_i|²) / (N(N − 1))
    for the unit vectors u_i (in float64)."""
    n = len(hidden)
    if n < 2:
        raise LaserflowError(f"the cosine similarity across prompts needs two items; the dataset has {n}")
    units = torch.nn.functional.normalize(hidden.double(), dim=1)
    total = units.sum(0)
    return float((total @ total - (units * units).sum()) / (n * (n - 1)))


def _norm(text: str) -> str:
    return text.lower().strip()


def generic_answers(predictions: list[str], top: int) -> list[str]:
    """The ``top`` most frequent predictions (lower-cased, stripped; equal counts in order of
    first appearance)."""
    return [text for text, _ in Counter(_norm(text) for text in predictions).most_common(top)]


def generic_share(predictions: list[str], generic: list[str]) -> float:
    """The % of ``predictions`` among the generic answers."""
    chosen = set(generic)
    return 100.0 * sum(_norm(text) in chosen for text in predictions) / len(predictions)


@dataclass(frozen=True)
class AnalysisPaths:
    """The files of one analysis job; ``selection`` only when the configuration is the selected one."""

    model: str
    dataset: str
    manifest: str | None
    svd: tuple[str, ...]
    summary: str
    records: str
    selection: str | None = None
    source_record: str | None = None  # the dataset's raw source and file hashes


def analysed_edit(configuration: dict | str, paths: AnalysisPaths) -> Edit:
    """The configuration named in the config, or the one the cell's selection chose."""
    if configuration != "selected":
        return entry_edit(configuration)
    return entry_edit(read_record(paths.selection, CHOICE_KEYS)["chosen"])


def run_analysis(settings: EvaluationSettings, analysis: dict, paths: AnalysisPaths) -> dict:
    """Score the dataset with the base model, LASER and the bottom-only matrix at every share;
    write each item's predictions and the summary (metrics, generic share, cosine per variant)."""
    started = time.perf_counter()
    edit = analysed_edit(analysis["configuration"], paths)
    factors_file = SVD.format(model=settings.model, tau=edit.tau, layer=edit.layer)
    if factors_file not in paths.svd:
        raise LaserflowError(f"{factors_file}: the SVD factors of the analysed matrix are not among the job's inputs")
    items, model, tokenizer, family = load_job(settings, paths.model, paths.dataset, paths.manifest)
    factors = load_svd_cache([factors_file])
    n_val = validation_size(len(items), settings.val_fraction)
    requests, plans, rows = plan_items(tokenizer, family, items, settings.scoring, settings.dataset)
    prompts = [request.prompt for request in requests]
    prediction = [rows[_prediction_row(plan)] for plan in plans]
    info = dataset_info(settings.dataset)
    # The base model, LASER (the top components) and the bottom-only matrix at each share, scored
    # on the same batches; the layers below the analysed one run once per batch for all of them.
    variants = [("base", None), ("laser", None)] + [("bottom", share) for share in analysis["shares"]]
    laser = edited_parameters(model, family, [edit], factors)
    laser_kept = {name: edit.level.kept_rank((values["U"].shape[0], values["Vh"].shape[1]))
                  for name, values in factors.items()}
    bottoms = [bottom_values(model, family, edit, factors, share) for share in analysis["shares"]]
    states = [{}, laser] + [values for values, _ in bottoms]
    kept = [None, laser_kept] + [counts for _, counts in bottoms]
    weights = WeightStates(model, family, states, shared=edit.layer)
    log.info("scoring %d items under %d variants", len(items), len(states))
    records = score_states(weights, tokenizer, family, items, settings.scoring, settings.dataset, n_val)
    hidden = final_hidden_states(weights, tokenizer.pad_token_id, prediction,
                                 [int(position >= n_val) for position in range(len(items))],
                                 settings.scoring.batch_size, settings.scoring.show_progress)
    summaries = [{"variant": name, "share": share, "components": counts,
                  "metrics": split_metrics(variant_records, n_val), "mean_cosine": mean_pairwise_cosine(states_hidden)}
                 for (name, share), counts, variant_records, states_hidden in zip(variants, kept, records, hidden)]
    predictions = [[record["prediction"] for record in variant_records] for variant_records in records]
    correct = [[record["correct"] for record in variant_records] for variant_records in records]
    generic = generic_answers(predictions[0], analysis["generic_top"])
    for summary, predicted in zip(summaries, predictions):
        summary["generic_share"] = generic_share(predicted, generic)
    rows_out = [{"index": item["index"], "prompt": prompt,
                 "gold": item["answer"] if "answer" in item else info.choices[item["label"]],
                 "predictions": [predicted[i] for predicted in predictions],
                 "correct": [flags[i] for flags in correct]}
                for i, (item, prompt) in enumerate(zip(items, prompts))]
    summary = {
        "model": settings.model,
        "dataset": settings.dataset,
        "family": family.name,
        "configuration": describe_edits(model, family, [edit])[0],
        "configuration_source": "selected" if analysis["configuration"] == "selected" else "config",
        "ranks": {name: len(values["S"]) for name, values in factors.items()},
        "shares": list(analysis["shares"]),
        "rounding": "bottom components kept = floor(share * rank + 0.5)",
        "svd": {"mode": "exact"},
        "scoring": describe_scoring(settings.scoring, family, tokenizer, settings.dataset, items[0],
                                    next(model.parameters()).device),
        "n_items": len(items),
        "n_val": n_val,
        "generic": {"top": analysis["generic_top"], "answers": generic,
                    "definition": "the base model's most frequent predictions over the dataset (lower-cased, stripped)"},
        "cosine": COSINE,
        "variants": summaries,
        "items_file": str(paths.records),
        "provenance": provenance(settings, paths, model, [factors_file]),
        "timing": {"seconds": round(time.perf_counter() - started, 3)},
    }
    write_jsonl(paths.records, rows_out)
    write_json(paths.summary, summary)
    return summary


def run_job(job: dict) -> dict:
    """One analysis job as plain values (``settings``, ``analysis``: the config block, and
    ``paths``: the ``AnalysisPaths`` fields), e.g. sent through the worker."""
    return run_analysis(EvaluationSettings.from_dict(job["settings"]), job["analysis"],
                        AnalysisPaths(**job["paths"] | {"svd": tuple(job["paths"]["svd"])}))
