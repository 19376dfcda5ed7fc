"""Model manifests: the sha256 of a model's weight, config and tokenizer files, and the checks that
let content, not timestamps, decide when a model's results (or an SVD cache) are stale.

The manifest (``paths.MANIFEST``) is what the SVD and evaluation jobs depend on and what their
provenance copies. The model rule writes it; whenever the workflow is read, ``refresh`` rewrites
it if the model's files changed, so that (its content newer and different) Snakemake reruns every
job that lists it. Beside it, a stat record (``.{model}.stat.json``: each file's size, mtime,
ctime, inode and device when it was hashed, and its sha256) lets the check skip files nobody has
touched; a touched file is hashed again and, its content unchanged, reruns nothing.

SVD factors files are checked the same way (``svd_cache``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .io import LaserflowError, read_json, sha256_file, write_json

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.json", "*.model", "*.txt")


def stat_path(manifest: str | os.PathLike) -> Path:
    """The stat record beside a manifest (hidden, so no model name can collide with it)."""
    manifest = Path(manifest)
    return manifest.with_name(f".{manifest.stem}.stat.json")


def model_files(model_dir: str | os.PathLike) -> list[Path]:
    model_dir = Path(model_dir)
    return sorted({path for pattern in WEIGHT_PATTERNS for path in model_dir.glob(pattern) if path.is_file()})


def file_stat(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


def file_hashes(model_dir: str | os.PathLike, record_path: Path, update: bool = False) -> dict[str, str]:
    """File name -> sha256 of a model's files, rehashing only files whose stat differs from the
    record (``update``: write the record back when a file was rehashed)."""
    try:
        record = read_json(record_path) if record_path.exists() else {}
    except LaserflowError:
        record = {}
    hashes, rehashed = {}, False
    for path in model_files(model_dir):
        stat = file_stat(path)  # taken before hashing: a file written meanwhile is rehashed next time
        entry = record.get(path.name)
        if not isinstance(entry, dict) or entry.get("stat") != stat:
            entry, rehashed = {"stat": stat, "sha256": sha256_file(path)}, True
        record[path.name] = entry
        hashes[path.name] = entry["sha256"]
    if update and rehashed:
        write_json(record_path, {name: record[name] for name in hashes})
    return hashes


def check_safetensors(path: Path) -> None:
    """A safetensors file is as long as its header says (a truncated copy is a one-line error)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        try:
            header = json.loads(handle.read(length)) if 8 + length <= size else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if not isinstance(header, dict):
        raise LaserflowError(f"{path}: not a complete safetensors file (its header is unreadable); "
                             f"restore or re-download the model")
    end = max((entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"), default=0)
    if 8 + length + end != size:
        raise LaserflowError(f"{path}: truncated or damaged safetensors file ({size} bytes, its header describes "
                             f"{8 + length + end}); restore or re-download the model")


def _write(model_dir: Path, out_path: str | os.PathLike, hashes: dict[str, str]) -> dict:
    if not any(Path(name).suffix in (".safetensors", ".bin") for name in hashes):
        raise LaserflowError(f"{model_dir}: no weight files (*.safetensors or *.bin)")
    for name in hashes:
        if name.endswith(".safetensors"):
            check_safetensors(model_dir / name)
    manifest = {"directory": str(model_dir), "files": hashes}
    write_json(out_path, manifest)
    return manifest


def write_manifest(model_dir: str | os.PathLike, out_path: str | os.PathLike) -> dict:
    """Hash every weight, config and tokenizer file of a model directory (checking that each
    safetensors file is complete) and write the manifest and its stat record."""
    record = stat_path(out_path)
    record.unlink(missing_ok=True)  # the rule hashes every file afresh
    return _write(Path(model_dir), out_path, file_hashes(model_dir, record, update=True))


def _first_difference(found: dict[str, str], recorded: dict[str, str]) -> str:
    return next(name for name in sorted(found.keys() | recorded.keys()) if found.get(name) != recorded.get(name))


def refresh(model_dir: str | os.PathLike, manifest_path: str | os.PathLike) -> str | None:
    """Rewrite a manifest whose model files changed (so that, its content changed, every SVD and
    evaluation of the model reruns); returns what changed, or None when it still holds."""
    manifest_path = Path(manifest_path)
    if not (manifest_path.is_file() and Path(model_dir).is_dir()):
        return None
    try:
        recorded = read_json(manifest_path)["files"]
    except (LaserflowError, KeyError, TypeError):
        recorded = {}
    found = file_hashes(model_dir, stat_path(manifest_path), update=True)
    if found == recorded:
        return None
    _write(Path(model_dir), manifest_path, found)
    return (f"{model_dir}: {_first_difference(found, recorded)} changed since {manifest_path} was written; "
            f"rehashed, so every SVD and evaluation of this model reruns")


def verified_files(model_dir: str | os.PathLike, manifest_path: str | os.PathLike) -> dict[str, str]:
    """The manifest's file hashes, after checking that the model's files still have them."""
    recorded = read_json(manifest_path)["files"]
    found = file_hashes(model_dir, stat_path(manifest_path))
    if found != recorded:
        raise LaserflowError(f"{model_dir}: {_first_difference(found, recorded)} changed since {manifest_path} "
                             f"was written; rerun snakemake, which rehashes it and reruns what it affects")
    return recorded
