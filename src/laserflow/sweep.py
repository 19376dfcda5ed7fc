"""One sweep job: edit a model with a configuration, score a dataset, write items and a summary."""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import __version__
from .io import LaserflowError, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from .edits import Edit, parse_level
from .laser import apply_edits
from .models import load_model, model_activation
from .svd import load_svd_cache
from .scoring import ScoringOptions, describe_scoring, resolve_batch_size, score_items, split_metrics, validation_size

log = logging.getLogger(__name__)


def software_versions() -> dict:
    """Versions of the packages a result depends on, and laserflow's git commit when available."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("torch", "transformers", "tokenizers", "datasets", "snakemake", "laserflow"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    out["laserflow_commit"] = _git_commit()
    return out


def _git_commit() -> str | None:
    import subprocess

    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_configuration(
    *,
    model_name: str,
    model_dir: str | os.PathLike,
    dataset_name: str,
    dataset_path: str | os.PathLike,
    edits: list[Edit],
    summary_path: str | os.PathLike,
    items_path: str | os.PathLike,
    svd_paths: list[str | os.PathLike] = (),
    svd_mode: str = "exact",
    seed: int = 0,
    dtype: str = "float32",
    device: str = "cpu",
    fused_gelu: bool = True,
    scoring: ScoringOptions = ScoringOptions(),
    val_fraction: float = 0.2,
    model_source: dict | None = None,
    model_manifest: str | os.PathLike | None = None,
    dataset_source: dict | None = None,
) -> dict:
    """Evaluate the base model (no edits) or one configuration; write per-item records and a summary.

    The summary is deterministic for the same inputs on the same machine except its ``timing``.
    """
    started = time.perf_counter()
    items = read_jsonl(dataset_path)
    if not items:
        raise LaserflowError(f"{dataset_path}: the dataset has no items")
    model, tokenizer, family = load_model(model_dir, dtype=dtype, device=device, fused_gelu=fused_gelu)
    load_seconds = time.perf_counter() - started
    apply_edits(model, family, edits, load_svd_cache(svd_paths) if svd_mode == "exact" else None, svd_mode, seed)
    edited = time.perf_counter()
    log.info("%s on %s: %s; scoring %d items", model_name, dataset_name,
             [edit.describe() for edit in edits] or "base model", len(items))
    scoring = replace(scoring, batch_size=resolve_batch_size(scoring.batch_size, next(model.parameters()).device))
    records = score_items(model, tokenizer, family, items, scoring, dataset=dataset_name)
    n_val = validation_size(len(records), val_fraction)
    metrics = split_metrics(records, n_val)
    log.info("val acc %.2f (loss %.3f), test acc %.2f (loss %.3f)", metrics["val"]["acc"],
             metrics["val"]["logloss"], metrics["test"]["acc"], metrics["test"]["logloss"])
    uses_svd = any(edit.intervention == "laser" for edit in edits)
    summary = {
        "model": model_name,
        "dataset": dataset_name,
        "family": family.name,
        "edits": [edit.describe() for edit in edits],
        "svd": ({"mode": svd_mode, "seed": seed} | ({"niter": family.randomized_niter} if svd_mode == "randomized" else {}))
        if uses_svd else None,
        "scoring": describe_scoring(scoring, family, tokenizer, dataset_name, items[0]),
        "n_items": len(records),
        "n_val": n_val,
        "metrics": metrics,
        "items_file": Path(items_path).name,
        "provenance": {
            "target": str(summary_path),
            "model": {"source": model_source, "weights": read_json(model_manifest)["files"] if model_manifest else None},
            "dataset": {"source": dataset_source, "processed_sha256": sha256_file(dataset_path)},
            "svd_files": [str(path) for path in svd_paths] if uses_svd and svd_mode == "exact" else [],
            "device": str(next(model.parameters()).device),
            "dtype": dtype,
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
    write_jsonl(items_path, records)
    write_json(summary_path, summary)
    return summary


def edits_from_wildcards(wildcards) -> list[Edit]:
    """The configuration a sweep target names; the base target has no intervention wildcard."""
    intervention = getattr(wildcards, "intervention", None)
    if intervention is None:
        return []
    return [Edit(intervention, wildcards.tau, int(wildcards.layer), parse_level(wildcards.level))]


def run_from_job(inputs, outputs, wildcards, params: dict) -> dict:
    """Adapter from a Snakemake job (input, output, wildcards, params) to run_configuration."""
    svd = params.get("svd") or {"mode": "exact", "seed": 0}
    return run_configuration(
        model_name=params["model"],
        model_dir=inputs.model,
        dataset_name=params["dataset"],
        dataset_path=inputs.dataset,
        edits=edits_from_wildcards(wildcards),
        summary_path=outputs.summary,
        items_path=outputs.records,
        svd_paths=list(getattr(inputs, "svd", [])),
        svd_mode=svd["mode"],
        seed=svd["seed"],
        dtype=params["dtype"],
        device=params["device"],
        fused_gelu=params["fused_gelu"],
        scoring=ScoringOptions(
            batch_size=params["batch_size"],
            max_new_tokens=params["max_new_tokens"],
            generation_match=params["generation_match"],
            masked_loss=params["masked_loss"],
            truthfulqa_prompt=params["truthfulqa_prompt"],
        ),
        val_fraction=params["val_fraction"],
        model_source=params.get("model_source"),
        model_manifest=getattr(inputs, "manifest", None),
        dataset_source=params.get("dataset_source"),
    )
