"""Job resource requests, for local and SLURM runs: host memory estimated from a configured model,
and how a sweep job asks for a GPU.

A job holds the whole model in its dtype while loading it, plus the Python, torch and CUDA runtime.
GPU memory is not requested: a job gets a whole GPU (GPT-J fp16 needs ~12 GB of it, Llama-2 7B
~14 GB in fp16 and ~28 GB in fp32).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .sweep import model_info
from .tiny import tiny_spec

# Parameters of each family's reference checkpoint and its layers; other sizes scale by layers.
FAMILY_PARAMETERS = {
    "gptj": (6_053_381_344, 28),  # EleutherAI/gpt-j-6B
    "llama": (6_738_415_616, 32),  # meta-llama/Llama-2-7b-hf
    "roberta": (124_697_433, 12),  # roberta-base, with its masked-LM head
    "phi": (1_418_270_720, 24),  # microsoft/phi-1_5
    "gpt2": (124_439_808, 12),  # openai-community/gpt2
    "gpt_neox": (1_414_647_808, 24),  # EleutherAI/pythia-1.4b
    "phi3": (3_821_079_552, 32),  # microsoft/Phi-3-mini-4k-instruct
}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
JOB_OVERHEAD_MB = 3000  # Python, torch, transformers, the CUDA context and the job process
TINY_VOCABULARY = 50_000  # an upper bound for the tokenizers trained on the demo data


def model_parameters(config: dict, model: str) -> int:
    """Approximate parameter count of a configured model."""
    spec = config["models"][model]
    layers = model_info(config, model).layers
    if "tiny" in spec:
        tiny = tiny_spec(spec)
        per_layer = 4 * tiny.hidden * tiny.hidden + 3 * tiny.hidden * tiny.intermediate
        return layers * per_layer + 2 * TINY_VOCABULARY * tiny.hidden
    parameters, reference_layers = FAMILY_PARAMETERS[spec["family"]]
    return parameters * layers // reference_layers


def megabytes(n_bytes: int) -> int:
    """A memory request in MB: n_bytes plus 10% and the job overhead, rounded up to 1000 MB."""
    return -(-(int(n_bytes * 1.1) // 1_000_000 + JOB_OVERHEAD_MB) // 1000) * 1000


def evaluation_mem_mb(config: dict, model: str, extra_bytes: int = 0) -> int:
    """Host memory of a job that loads the model in its configured dtype (and ``extra_bytes``)."""
    dtype = config["models"][model].get("dtype", "float32")
    return megabytes(model_parameters(config, model) * DTYPE_BYTES[dtype] + extra_bytes)


def compose_mem_mb(config: dict, model: str, factor_files: list[str]) -> int:
    """Host memory of a composition job: the model and every SVD factors file it composes, all
    held at once (GPT-J's 28 fc_in: 9.4 GB). Files not made yet (a dry run) count nothing."""
    return evaluation_mem_mb(config, model, sum(_size(path) for path in factor_files))


def analysis_mem_mb(config: dict, model: str, model_dir: str | os.PathLike, dataset: str | os.PathLike,
                    factor_files: list[str]) -> int:
    """Host memory of an analysis job: the model, the largest SVD factors file it may load, and
    one float32 final hidden state per item (GPT-J on CounterFact: 1.1 GB). Files not made yet
    (a dry run) count nothing."""
    hidden_states = 0
    model_config, items = Path(model_dir) / "config.json", Path(dataset)
    if model_config.exists() and items.exists():
        values = json.loads(model_config.read_text())
        with open(items, "rb") as handle:
            hidden_states = 4 * (values.get("n_embd") or values["hidden_size"]) * sum(1 for _ in handle)
    return evaluation_mem_mb(config, model, max(map(_size, factor_files), default=0) + hidden_states)


def _size(path: str | os.PathLike) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def export_mem_mb(config: dict, model: str) -> int:
    """Host memory of an export job: the edited model, the dense export read back to verify it,
    and the factorized export rebuilt (three copies of the model in its dtype)."""
    dtype = config["models"][model].get("dtype", "float32")
    return megabytes(3 * model_parameters(config, model) * DTYPE_BYTES[dtype])


def svd_mem_mb(config: dict, model: str, model_dir: str | os.PathLike) -> int:
    """Host memory of an svd job.

    It reads the (τ, ℓ) matrices straight from safetensors (four float32 copies of one layer's
    weights bound the matrices and their factors); a checkpoint without safetensors (GPT-J's
    float16 branch has only pytorch_model.bin) is loaded whole in float32 instead.
    """
    parameters = model_parameters(config, model)
    if any(Path(model_dir).glob("*.safetensors")):
        return megabytes(4 * 4 * parameters // model_info(config, model).layers)
    dtype = config["models"][model].get("dtype", "float32")
    return megabytes(parameters * (4 + DTYPE_BYTES[dtype]))


def uses_gpu(config: dict) -> bool:
    """Whether sweep jobs run on a GPU: not with ``evaluation.device: cpu``, otherwise when the
    host has one (``nvidia-smi``)."""
    return config["evaluation"]["device"] != "cpu" and shutil.which("nvidia-smi") is not None


def local_gpus(config: dict, cluster: bool) -> int:
    """GPUs a sweep job takes from the local ``gpu`` pool (profiles/default: one job per GPU).
    Under a cluster executor the GPU is requested with ``gpu_gres`` instead: the workflow
    profile's pool of one would otherwise let one GPU job run at a time on the whole cluster."""
    return 0 if cluster else int(uses_gpu(config))


def gpu_gres(config: dict, cluster: bool) -> str:
    """SLURM generic resource of a sweep job: one GPU under a cluster executor unless the config
    says device: cpu (the head node's own GPUs do not matter there); nothing locally."""
    return "gpu:1" if cluster and config["evaluation"]["device"] != "cpu" else ""
