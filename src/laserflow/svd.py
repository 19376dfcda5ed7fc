"""The SVD cache: exact factors of each (model, τ, ℓ) matrix, computed once, reused for every ρ.

Each factors file (``paths.SVD``) has a record beside it (``paths.svd_record``): the file's sha256
and the sha256 of each source matrix. Loading verifies the file against its record, so a corrupt
or truncated cache is a one-line error naming the file, never a number. The file is written
deterministically (the same factors give the same bytes).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import Path

import torch

from .families import num_layers
from .io import LaserflowError, read_json, write_bytes, write_json
from .laser import matrix_of, svd_factors
from .manifest import verified_files
from .models import model_family, read_model_config, read_parameters
from .paths import svd_record
from .svd_cache import check_svd_digest, remember_svd

log = logging.getLogger(__name__)


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    tensor = tensor.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def compute_svd(model_dir: str | os.PathLike, tau: str, layer: int, out_path: str | os.PathLike,
                manifest: str | os.PathLike | None = None) -> None:
    """Exact float32 SVD factors of the matrices (τ, ℓ) selects (each as W, out × in, keyed by
    ``Target.key``), saved for every ρ to reuse, with their record (the file's sha256 and the source
    parameters'). With the model's ``manifest``, its files are first checked against it."""
    if manifest is not None:
        verified_files(model_dir, manifest)
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
    buffer = io.BytesIO()  # saved from memory: a file name would be stored in the archive
    torch.save({"tau": tau, "layer": layer, "factors": factors}, buffer)
    data = buffer.getvalue()
    write_bytes(out_path, data)
    write_json(svd_record(str(out_path)), {
        "file": Path(out_path).name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source_sha256": {name: tensor_sha256(weight) for name, weight in weights.items()},
    })
    remember_svd(out_path)


def verified_bytes(path: str | os.PathLike) -> bytes:
    """A factors file's bytes, checked against the sha256 its record holds."""
    data = Path(path).read_bytes()
    check_svd_digest(path, hashlib.sha256(data).hexdigest())
    return data


def load_svd_cache(paths: list[str | os.PathLike]) -> dict[str, dict[str, torch.Tensor]]:
    """Parameter name -> exact SVD factors, merged from cache files, each verified first."""
    cache = {}
    for path in paths:
        cache |= torch.load(io.BytesIO(verified_bytes(path)), weights_only=True)["factors"]
    return cache


def svd_sha256(paths: list[str | os.PathLike]) -> dict[str, str]:
    """Each cache file's recorded sha256 (``load_svd_cache`` has checked the files against it)."""
    return {str(path): read_json(svd_record(str(path)))["sha256"] for path in paths}


def run_job(job: dict) -> None:
    """One svd job as plain values (the model directory and its manifest, τ, ℓ and the factors
    file), e.g. sent through the worker."""
    compute_svd(job["model"], job["tau"], int(job["layer"]), job["factors"], job.get("manifest"))
