"""One evaluation job: edit a model with a configuration (or none: the base), score a dataset,
write the per-item records and a summary with the job's provenance."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from .edits import Edit
from .forward import resolve_batch_size
from .io import LaserflowError, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from .laser import apply_edits
from .models import load_model, model_activation
from .paths import edits_of
from .scoring import describe_scoring, score_items
from .selection import split_metrics, validation_size
from .settings import EvaluationPaths, EvaluationSettings, SvdSettings
from .svd import load_svd_cache
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
    uses_svd = any(edit.intervention == "laser" for edit in edits)
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
            "model": {"source": settings.model_source,
                      "weights": read_json(paths.manifest)["files"] if paths.manifest else None},
            "dataset": {"source": settings.dataset_source, "processed_sha256": sha256_file(paths.dataset)},
            "svd_files": list(paths.svd) if uses_svd and svd.mode == "exact" else [],
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


def run_job(job: dict) -> dict:
    """One evaluation job as plain values (``settings.job_values``), e.g. sent through the worker."""
    return run_configuration(EvaluationSettings.from_dict(job["settings"]), edits_of(job["key"]),
                             EvaluationPaths(**job["paths"] | {"svd": tuple(job["paths"]["svd"])}))
