"""Loading models the way the paper does (``from_pretrained``), hub snapshots, and weight reads."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from .families import Family, detect_family
from .io import LaserflowError, atomic_dir
from .manifest import check_safetensors

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Files a snapshot needs; the hub repos also hold duplicate formats (flax, tf, onnx) we skip.
SNAPSHOT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*"]
SNAPSHOT_FALLBACK_PATTERNS = ["*.json", "*.bin", "*.model", "*.txt", "tokenizer*"]


def read_model_config(model_dir: str | os.PathLike) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.exists():
        raise LaserflowError(f"{model_dir}: no config.json; is this a transformers model directory?")
    return json.loads(path.read_text())


def model_family(model_dir: str | os.PathLike) -> Family:
    return detect_family(read_model_config(model_dir), source=str(model_dir))


_GPU_CLAIMS: list = []  # lock files held for the life of the job process


def resolve_device(device: str) -> torch.device:
    """The torch device for evaluation.device; on a multi-GPU host, 'auto'/'cuda' claim a free GPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LaserflowError(f"evaluation.device is '{device}' but no CUDA device is available")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise LaserflowError(f"evaluation.device is '{device}' but this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s)")
    if device == "cuda" and torch.cuda.device_count() > 1:
        index, handle = claim_gpu(torch.cuda.device_count())
        _GPU_CLAIMS.append(handle)
        return torch.device("cuda", index)
    return torch.device(device)


def claim_gpu(count: int, lock_dir: str | os.PathLike | None = None) -> tuple[int, object]:
    """The first GPU no other job of this user holds, by an exclusive lock per device (released
    at exit), in the user's private directory.

    Snakemake's `gpu` resource caps how many GPU jobs run at once; this gives each its own
    device. Under SLURM, CUDA_VISIBLE_DEVICES already shows a job one GPU, so no claim is made.
    """
    import fcntl

    from .runtime import open_lock, private_dir

    lock_dir = Path(lock_dir) if lock_dir else private_dir()
    for index in range(count):
        handle = os.fdopen(open_lock(lock_dir / f"gpu{index}.lock"), "rb+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return index, handle
    raise LaserflowError(f"all {count} GPUs are held by other laserflow jobs; cap the gpu resource at {count}")


# GPT-J and Phi's tanh-approximation GELU, which transformers computes in five element-wise
# kernels; "gelu_pytorch_tanh" is the same function in one (float rounding differs).
UNFUSED_GELU, FUSED_GELU = "gelu_new", "gelu_pytorch_tanh"
ACTIVATION_KEYS = ("activation_function", "hidden_act")


def activation_overrides(config: dict, fused_gelu: bool) -> dict:
    """Config overrides that run an unfused tanh GELU as the fused kernel (empty if none applies)."""
    if not fused_gelu:
        return {}
    return {key: FUSED_GELU for key in ACTIVATION_KEYS if config.get(key) == UNFUSED_GELU}


def model_activation(model) -> str | None:
    """The activation function the loaded model runs."""
    return next((getattr(model.config, key) for key in ACTIVATION_KEYS if hasattr(model.config, key)), None)


def load_model(model_dir: str | os.PathLike, dtype: str = "float32", device: str = "cpu", fused_gelu: bool = True):
    """Model, tokenizer and family from a local directory, with no hub access.

    ``fused_gelu`` runs a ``gelu_new`` activation as ``gelu_pytorch_tanh`` (see ACTIVATION_KEYS).
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    family = model_family(model_dir)
    model_class = AutoModelForMaskedLM if family.scoring == "masked" else AutoModelForCausalLM
    check_complete(model_dir)
    if dtype not in DTYPES:
        raise LaserflowError(f"dtype '{dtype}' is not one of {', '.join(DTYPES)}")
    overrides = activation_overrides(read_model_config(model_dir), fused_gelu)
    log.info("loading %s model from %s (%s on %s%s)", family.name, model_dir, dtype, device,
             ", fused GELU" if overrides else "")
    model = model_class.from_pretrained(model_dir, dtype=DTYPES[dtype], local_files_only=True, **overrides)
    model.to(resolve_device(device)).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, family.for_tokenizer(tokenizer)


def check_complete(model_dir: str | os.PathLike) -> None:
    """Every safetensors file of the model is as long as its header says (one line if not)."""
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        check_safetensors(path)


def _safetensors_files(model_dir: Path) -> dict[str, Path]:
    """Parameter name -> safetensors file holding it (empty if the model has no safetensors)."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.exists():
        return {}
    from safetensors import safe_open

    with safe_open(single, "pt") as handle:
        return {name: single for name in handle.keys()}


def read_parameters(model_dir: str | os.PathLike, names: list[str]) -> dict[str, torch.Tensor]:
    """Read named weights straight from safetensors; load the whole model only as a fallback."""
    model_dir = Path(model_dir)
    check_complete(model_dir)
    files = _safetensors_files(model_dir)
    if all(name in files for name in names):
        from safetensors import safe_open

        out = {}
        for name in names:
            with safe_open(files[name], "pt") as handle:
                out[name] = handle.get_tensor(name)
        return out
    model, _, _ = load_model(model_dir, dtype="float32")
    params = dict(model.named_parameters())
    missing = [name for name in names if name not in params]
    if missing:
        raise LaserflowError(f"{model_dir}: the model has no parameter {missing[0]}")
    return {name: params[name].detach().clone() for name in names}


def snapshot(repo_id: str, revision: str, out_dir: str | os.PathLike) -> None:
    """Download a hub model once into ``out_dir`` (atomically), so jobs never download concurrently."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    token = os.environ.get("HF_TOKEN")
    with atomic_dir(out_dir) as tmp:
        try:
            snapshot_download(repo_id, revision=revision, local_dir=tmp, allow_patterns=SNAPSHOT_PATTERNS, token=token)
            if not any(tmp.glob("*.safetensors")):
                snapshot_download(
                    repo_id, revision=revision, local_dir=tmp, allow_patterns=SNAPSHOT_FALLBACK_PATTERNS, token=token
                )
        except GatedRepoError:
            raise LaserflowError(
                f"model {repo_id} is gated: accept its licence on the hub and export HF_TOKEN, "
                f"or set models.<name>.path to a local copy"
            ) from None
        except RepositoryNotFoundError:
            raise LaserflowError(f"model {repo_id}@{revision} was not found on the hub (or needs HF_TOKEN)") from None
        except (HfHubHTTPError, OSError) as err:
            raise LaserflowError(
                f"model {repo_id}@{revision}: the hub is unreachable ({type(err).__name__}); "
                f"download it elsewhere and set models.<name>.path to the local directory"
            ) from None
