"""One evaluation job: edit a model with a configuration (or none: the base), score a dataset,
write the per-item records and a summary with the job's provenance."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from .edits import Edit, level_label
from .forward import resolve_batch_size
from .io import LaserflowError, first_non_finite, read_jsonl, sha256_file, write_json, write_jsonl
from .laser import apply_edits
from .manifest import verified_files
from .models import load_model, model_activation
from .paths import edits_of
from .scoring import describe_scoring, score_items
from .selection import split_metrics, validation_size
from .settings import EvaluationPaths, EvaluationSettings, SvdSettings
from .svd import load_svd_cache, svd_sha256
from .versions import software_versions

log = logging.getLogger(__name__)


def run_configuration(settings: EvaluationSettings, edits: list[Edit], paths: EvaluationPaths) -> dict:
    """Evaluate the base model (no edits) or one configuration; write per-item records and a summary.

    The summary is deterministic for the same inputs on the same machine except its ``timing``.
    """
    started = time.perf_counter()
    items = read_jsonl(paths.dataset)
    if not items:
        raise LaserflowError(f"{paths.dataset}: the dataset has no items")
    if validation_size(len(items), settings.val_fraction) == 0:
        raise LaserflowError(f"selection.val_fraction: {settings.val_fraction} of the {len(items)} items of "
                             f"{settings.dataset} leaves no validation item; raise it to at least {1 / len(items):.4g}")
    weights = verified_files(paths.model, paths.manifest) if paths.manifest else None
    model, tokenizer, family = load_model(paths.model, dtype=settings.dtype, device=settings.device,
                                          fused_gelu=settings.fused_gelu)
    load_seconds = time.perf_counter() - started
    svd = settings.svd or SvdSettings()
    apply_edits(model, family, edits, load_svd_cache(paths.svd) if svd.mode == "exact" else None, svd.mode, svd.seed)
    edited = time.perf_counter()
    log.info("%s on %s: %s; scoring %d items", settings.model, settings.dataset,
             [edit.describe() for edit in edits] or "base model", len(items))
    scoring = replace(settings.scoring, batch_size=resolve_batch_size(settings.scoring.batch_size,
                                                                      next(model.parameters()).device))
    records = score_items(model, tokenizer, family, items, scoring, dataset=settings.dataset)
    n_val = validation_size(len(records), settings.val_fraction)
    metrics = split_metrics(records, n_val)
    log.info("val acc %.2f (loss %.3f), test acc %.2f (loss %.3f)", metrics["val"]["acc"],
             metrics["val"]["logloss"], metrics["test"]["acc"], metrics["test"]["logloss"])
    refuse_non_finite(paths.summary, settings, edits, metrics, records)
    uses_svd = any(edit.intervention == "laser" for edit in edits)
    svd_files = list(paths.svd) if uses_svd and svd.mode == "exact" else []
    summary = {
        "model": settings.model,
        "dataset": settings.dataset,
        "family": family.name,
        "edits": [edit.describe() for edit in edits],
        "svd": ({"mode": svd.mode, "seed": svd.seed} | ({"niter": family.randomized_niter} if svd.mode == "randomized" else {}))
        if uses_svd else None,
        "scoring": describe_scoring(scoring, family, tokenizer, settings.dataset, items[0]),
        "n_items": len(records),
        "n_val": n_val,
        "metrics": metrics,
        "items_file": Path(paths.records).name,
        "provenance": {
            "target": str(paths.summary),
            "model": {"source": settings.model_source, "weights": weights},
            "dataset": {"source": settings.dataset_source, "processed_sha256": sha256_file(paths.dataset)},
            "svd_files": svd_files,
            "svd_sha256": svd_sha256(svd_files),
            "device": str(next(model.parameters()).device),
            "dtype": settings.dtype,
            "activation": model_activation(model),
            "threads": torch.get_num_threads(),
            "software": software_versions(),
        },
        "timing": {
            "load_seconds": round(load_seconds, 3),
            "edit_seconds": round(edited - started - load_seconds, 3),
            "score_seconds": round(time.perf_counter() - edited, 3),
        },
    }
    write_jsonl(paths.records, records)
    write_json(paths.summary, summary)
    return summary


def refuse_non_finite(target: str, settings: EvaluationSettings, edits: list[Edit], metrics: dict,
                      records: list[dict]) -> None:
    """Stop, writing nothing, when a metric or an item's record holds a NaN or an infinity."""
    found = first_non_finite(metrics)
    what = f"{found[0].replace('.', ' ')} is {found[1]}" if found else None
    if found is None and (found := first_non_finite(records)):
        position, key = found[0].split(".", 1)
        what = f"item {records[int(position)]['index']}: {key} is {found[1]}"
    if what:
        configuration = ", ".join(f"{edit.intervention} {edit.tau} layer {edit.layer} {level_label(edit.level)}"
                                  for edit in edits) or "base model"
        raise LaserflowError(f"{target}: {settings.model} on {settings.dataset}, {configuration}: {what}; "
                             f"no result written")


def run_job(job: dict) -> dict:
    """One evaluation job as plain values (``settings.job_values``), e.g. sent through the worker."""
    return run_configuration(EvaluationSettings.from_dict(job["settings"]), edits_of(job["key"]),
                             EvaluationPaths(**job["paths"] | {"svd": tuple(job["paths"]["svd"])}))
