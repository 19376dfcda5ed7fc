"""The SVD cache: exact factors of each (model, τ, ℓ) matrix, computed once, reused for every ρ."""

from __future__ import annotations

import logging
import os
import time

import torch

from .families import num_layers
from .io import LaserflowError, atomic_path
from .laser import matrix_of, svd_factors
from .models import model_family, read_model_config, read_parameters

log = logging.getLogger(__name__)


def compute_svd(model_dir: str | os.PathLike, tau: str, layer: int, out_path: str | os.PathLike) -> None:
    """Exact float32 SVD factors of the matrices (τ, ℓ) selects (each as W, out × in, keyed by
    ``Target.key``), saved for every ρ to reuse."""
    family = model_family(model_dir)
    model_config = read_model_config(model_dir)
    layers = num_layers(model_config)
    if not 0 <= layer < layers:
        raise LaserflowError(f"layer {layer} is outside the model's layers 0..{layers - 1}")
    targets = family.targets(tau, layer, model_config)
    weights = read_parameters(model_dir, list(dict.fromkeys(target.parameter for target in targets)))
    factors = {}
    for target in targets:
        matrix = matrix_of(weights[target.parameter], target)
        started = time.perf_counter()
        factors[target.key] = svd_factors(matrix)
        log.info("SVD of %s %s in %.2f s", target.key, tuple(matrix.shape), time.perf_counter() - started)
    with atomic_path(out_path) as tmp:
        torch.save({"tau": tau, "layer": layer, "factors": factors}, tmp)


def load_svd_cache(paths: list[str | os.PathLike]) -> dict[str, dict[str, torch.Tensor]]:
    """Parameter name -> exact SVD factors, merged from cache files."""
    cache = {}
    for path in paths:
        cache |= torch.load(path, weights_only=True)["factors"]
    return cache


def run_job(job: dict) -> None:
    """One svd job as plain values (the model directory, τ, ℓ and the factors file), e.g. sent
    through the worker."""
    compute_svd(job["model"], job["tau"], int(job["layer"]), job["factors"])
