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
from .evaluate import job_provenance, load_job
from .forward import pad, resolve_batch_size, run_batched
from .io import LaserflowError, write_json, write_jsonl
from .laser import apply_edits, restore_weights, select_parameters, truncate
from .paths import SVD
from .records import SELECTION_KEYS, read_record
from .scoring import describe_scoring, plan_items, score_items
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


def set_bottom(model, family, edit: Edit, factors: dict, share: float) -> tuple[dict, dict[str, int]]:
    """Replace each matrix (τ, ℓ) selects by its bottom-``share`` part; the original values (for
    ``restore_weights``) and the components kept per matrix."""
    originals, kept = {}, {}
    for name, param in select_parameters(model, family, edit.tau, edit.layer).items():
        kept[name] = bottom_count(share, len(factors[name]["S"]))
        new = bottom_weight(param.data, factors[name], kept[name])
        originals[name] = param.data.clone()
        with torch.no_grad():
            param.data.copy_(new.to(dtype=param.dtype))
    return originals, kept


def _prediction_row(plan: dict) -> int:
    """The row an item's prediction is read from: its fill masks, its labels, its answer or its
    first choice."""
    for key in ("fill", "labels", "loss"):
        if key in plan:
            return plan[key]
    return plan["choices"][0]


def prediction_rows(tokenizer, family, items: list[dict], options, dataset: str) -> tuple[list[str], list]:
    """Each item's prompt and the scoring row its prediction is read from."""
    requests, plans, rows = plan_items(tokenizer, family, items, options, dataset)
    return [request.prompt for request in requests], [rows[_prediction_row(plan)] for plan in plans]


def final_hidden_states(model, pad_id: int, rows: list, batch_size: int, show_progress: bool = False) -> torch.Tensor:
    """[items, hidden] float32: the base model's last hidden state at each row's first read
    position, in length-sorted, right-padded batches (as scoring runs them)."""
    device = next(model.parameters()).device

    def step(batch):
        ids, mask = pad([row.ids for row in batch], pad_id, left=False, device=device)
        hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        cols = torch.tensor([row.positions[0] for row in batch], device=device)
        return list(hidden[torch.arange(len(batch), device=device), cols].float().cpu())

    with torch.inference_mode():
        states = run_batched(rows, [len(row.ids) for row in rows], resolve_batch_size(batch_size, device), step,
                             show_progress, "final hidden states")
    return torch.stack(states)


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


def analysed_edit(configuration: dict | str, paths: AnalysisPaths) -> Edit:
    """The configuration named in the config, or the one the cell's selection chose."""
    if configuration != "selected":
        return entry_edit(configuration)
    return entry_edit(read_record(paths.selection, SELECTION_KEYS)["chosen"])


def run_analysis(settings: EvaluationSettings, analysis: dict, paths: AnalysisPaths) -> dict:
    """Score the dataset with the base model, LASER and the bottom-only matrix at every share;
    write each item's predictions and the summary (metrics, generic share, cosine per variant)."""
    started = time.perf_counter()
    edit = analysed_edit(analysis["configuration"], paths)
    factors_file = SVD.format(model=settings.model, tau=edit.tau, layer=edit.layer)
    if factors_file not in paths.svd:
        raise LaserflowError(f"{factors_file}: the SVD factors of the analysed matrix are not among the job's inputs")
    items, model, tokenizer, family, scoring = load_job(settings, paths.model, paths.dataset)
    factors = load_svd_cache([factors_file], next(model.parameters()).device)
    prompts, rows = prediction_rows(tokenizer, family, items, scoring, settings.dataset)
    info = dataset_info(settings.dataset)
    n_val = validation_size(len(items), settings.val_fraction)

    def apply(variant: str, share: float | None) -> tuple[dict, dict | None]:
        """Set a variant's weights: the original values to restore and the components kept per matrix."""
        if variant == "base":
            return {}, None
        if variant == "laser":
            kept = {name: edit.level.kept_rank((values["U"].shape[0], values["Vh"].shape[1]))
                    for name, values in factors.items()}
            return apply_edits(model, family, [edit], factors), kept
        return set_bottom(model, family, edit, factors, share)

    variants = [("base", None), ("laser", None)] + [("bottom", share) for share in analysis["shares"]]
    summaries, predictions, correct = [], [], []
    for name, share in variants:
        originals, kept = apply(name, share)
        log.info("%s%s: scoring %d items", name, "" if share is None else f" {share:g}", len(items))
        records = score_items(model, tokenizer, family, items, scoring, dataset=settings.dataset)
        hidden = final_hidden_states(model, tokenizer.pad_token_id, rows, scoring.batch_size, scoring.show_progress)
        restore_weights(model, originals)
        predictions.append([record["prediction"] for record in records])
        correct.append([record["correct"] for record in records])
        summaries.append({"variant": name, "share": share, "components": kept, "metrics": split_metrics(records, n_val),
                          "mean_cosine": mean_pairwise_cosine(hidden)})
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
        "configuration": edit.describe(),
        "configuration_source": "selected" if analysis["configuration"] == "selected" else "config",
        "ranks": {name: len(values["S"]) for name, values in factors.items()},
        "shares": list(analysis["shares"]),
        "rounding": "bottom components kept = floor(share * rank + 0.5)",
        "svd": {"mode": "exact"},
        "scoring": describe_scoring(scoring, family, tokenizer, settings.dataset, items[0]),
        "n_items": len(items),
        "n_val": n_val,
        "generic": {"top": analysis["generic_top"], "answers": generic,
                    "definition": "the base model's most frequent predictions over the dataset (lower-cased, stripped)"},
        "cosine": COSINE,
        "variants": summaries,
        "items_file": str(paths.records),
        "provenance": job_provenance(settings, model, paths.summary, paths.manifest, paths.dataset, [factors_file]),
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
