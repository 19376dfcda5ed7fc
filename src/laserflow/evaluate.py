"""One evaluation job: edit a model with a configuration (or none: the base), score a dataset,
write the per-item records and a summary with the job's provenance."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .edits import Edit, level_label
from .forward import WeightStates
from .io import LaserflowError, first_non_finite, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from .laser import describe_edits, edited_parameters
from .manifest import verified_files
from .models import load_model, model_activation
from .paths import edits_of, svd_files
from .scoring import describe_scoring, score_states
from .selection import split_metrics, validation_size
from .settings import EvaluationPaths, EvaluationSettings, SvdSettings
from .svd import load_svd_cache, svd_sha256
from .versions import software_versions

log = logging.getLogger(__name__)


def load_job(settings: EvaluationSettings, model_dir: str, dataset: str, manifest: str | None):
    """A job's items and its model, tokenizer and family, loaded as the settings say, after the
    model's files are checked against its manifest; stops when no item would validate."""
    items = read_jsonl(dataset)
    if not items:
        raise LaserflowError(f"{dataset}: the dataset has no items")
    if validation_size(len(items), settings.val_fraction) == 0:
        raise LaserflowError(f"selection.val_fraction: {settings.val_fraction} of the {len(items)} items of "
                             f"{settings.dataset} leaves no validation item; raise it to at least {1 / len(items):.4g}")
    if manifest:
        verified_files(model_dir, manifest)
    model, tokenizer, family = load_model(model_dir, dtype=settings.dtype, device=settings.device,
                                          fused_gelu=settings.fused_gelu)
    return items, model, tokenizer, family


def provenance(settings: EvaluationSettings, paths, model, svd_paths: list[str]) -> dict:
    """Where a job's result comes from: its target, the model's and dataset's sources with their
    files' sha256 (``paths`` names the summary, dataset, manifest and source record), the SVD
    files it read and their sha256, the device, dtype, activation, threads and software."""
    dataset = {"source": settings.dataset_source, "processed_sha256": sha256_file(paths.dataset)}
    if paths.source_record:
        dataset["raw_files"] = read_json(paths.source_record)["files"]
    return {
        "target": str(paths.summary),
        "model": {"source": settings.model_source,
                  "weights": read_json(paths.manifest)["files"] if paths.manifest else None},
        "dataset": dataset,
        "svd_files": svd_paths,
        "svd_sha256": svd_sha256(svd_paths),
        "device": str(next(model.parameters()).device),
        "dtype": settings.dtype,
        "activation": model_activation(model),
        "threads": torch.get_num_threads(),
        "software": software_versions(),
    }


def run_configuration(settings: EvaluationSettings, edits: list[Edit], paths: EvaluationPaths) -> dict:
    """Evaluate the base model (no edits) or one configuration; write its records and summary."""
    return run_configurations(settings, [(edits, paths)])[0]


def run_configurations(settings: EvaluationSettings, runs: list[tuple[list[Edit], EvaluationPaths]]) -> list[dict]:
    """Evaluate several configurations of one model on one dataset in one job: the base model,
    one configuration, or a layer group (the configurations editing one layer). The model is
    loaded once; each batch runs the layers below the lowest edited layer once and the rest once
    per configuration (``laserflow.forward.WeightStates``), which computes what each
    configuration's own job would. Each configuration's records and summary are written as its
    own job writes them; a summary is deterministic for the same inputs on the same machine
    except its ``timing``.
    """
    started = time.perf_counter()
    common = runs[0][1]
    items, model, tokenizer, family = load_job(settings, common.model, common.dataset, common.manifest)
    n_val = validation_size(len(items), settings.val_fraction)
    scored = items[:n_val] if settings.part == "validation" else items
    load_seconds = time.perf_counter() - started
    svd = settings.svd or SvdSettings()
    cache = load_svd_cache(sorted({path for _, paths in runs for path in paths.svd})) if svd.mode == "exact" else None
    states = [edited_parameters(model, family, edits, cache, svd.mode, svd.seed) for edits, _ in runs]
    # Every run edits some layer (not the base): the layers below the lowest edited one are shared.
    shared = min(edit.layer for edits, _ in runs for edit in edits) if all(edits for edits, _ in runs) else 0
    weights = WeightStates(model, family, states, shared)
    edited = time.perf_counter()
    log.info("%s on %s: %s; scoring %d of %d items (%s)", settings.model, settings.dataset,
             [[edit.describe() for edit in edits] for edits, _ in runs] if any(edits for edits, _ in runs) else "base model",
             len(scored), len(items), settings.part)
    records = score_states(weights, tokenizer, family, scored, settings.scoring, settings.dataset, n_val)
    score_seconds = (time.perf_counter() - edited) / len(runs)
    summaries = []
    for (edits, paths), run_records, work in zip(runs, records, weights.work):
        metrics = ({"val": split_metrics(run_records, n_val)["val"]} if settings.part == "validation"
                   else split_metrics(run_records, n_val))
        refuse_non_finite(paths.summary, settings, edits, metrics, run_records)
        uses_svd = any(edit.intervention == "laser" for edit in edits)
        summary = {
            "model": settings.model,
            "dataset": settings.dataset,
            "family": family.name,
            "edits": describe_edits(model, family, edits),
            "svd": ({"mode": svd.mode, "seed": svd.seed}
                    | ({"niter": family.randomized_niter} if svd.mode == "randomized" else {})) if uses_svd else None,
            "scoring": describe_scoring(settings.scoring, family, tokenizer, settings.dataset, items[0],
                                        next(model.parameters()).device),
            "score": settings.part,
            "n_items": len(items),
            "n_val": n_val,
            "metrics": metrics,
            "items_file": Path(paths.records).name,
            "provenance": provenance(settings, paths, model, [path for path in paths.svd if path in svd_files(
                settings.model, edits)] if svd.mode == "exact" else []),
            "timing": {
                "load_seconds": round(load_seconds, 3),
                "edit_seconds": round((edited - started - load_seconds) / len(runs), 3),
                "score_seconds": round(score_seconds, 3),
                "layer_tokens": round(work),
                "flops": float(f"{2 * weights.layer_parameters * work:.4g}"),
            },
        }
        log.info("%s: val acc %.2f (loss %.3f)%s", [edit.describe() for edit in edits] or "base model",
                 metrics["val"]["acc"], metrics["val"]["logloss"],
                 "" if settings.part == "validation" else
                 ", test acc %.2f (loss %.3f)" % (metrics["test"]["acc"], metrics["test"]["logloss"]))
        write_jsonl(paths.records, run_records)
        write_json(paths.summary, summary)
        summaries.append(summary)
    return summaries


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


def run_job(job: dict) -> list[dict]:
    """One evaluation job as plain values (``settings.job_values``), e.g. sent through the worker."""
    settings = EvaluationSettings.from_dict(job["settings"])
    return run_configurations(settings, [
        (edits_of(run["key"]), EvaluationPaths(**run["paths"] | {"svd": tuple(run["paths"]["svd"])}))
        for run in job["runs"]])
