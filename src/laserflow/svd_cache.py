"""SVD cache checks by content: each factors file (``paths.SVD``) against the sha256 its record
(``paths.svd_record``) holds, rehashing only files touched since they were last verified (a hidden
stat record beside each, as for model manifests).

When the workflow is read (rules/sweep.smk), ``check_svd_caches`` stops a run with a corrupt
cache in one line before any job starts, so no job's outputs are removed for it; the jobs reading
a cache verify it again when they load it (``svd.verified_bytes``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .io import LaserflowError, read_json, sha256_file, write_json
from .manifest import file_stat
from .paths import svd_record


def svd_stat_path(factors: str | os.PathLike) -> Path:
    """The stat record beside an SVD factors file (hidden): its stat when last verified."""
    factors = Path(factors)
    return factors.with_name(f".{factors.stem}.stat.json")


def check_svd_digest(factors: str | os.PathLike, found: str) -> None:
    """A factors file's sha256 is the one its record holds."""
    recorded = read_json(svd_record(str(factors))).get("sha256")
    if found != recorded:
        raise LaserflowError(f"{factors}: corrupt SVD cache (sha256 {found[:12]}…, recorded {str(recorded)[:12]}…); "
                             f"delete it and rerun snakemake, which rebuilds it")


def remember_svd(factors: str | os.PathLike) -> None:
    """Record a verified (or just written) factors file's stat."""
    write_json(svd_stat_path(factors), file_stat(Path(factors)))


def check_svd_caches(files: list[Path]) -> None:
    """Verify each factors file touched since it was last verified (an untouched one costs one
    stat); a file without its record is unfinished, and its rule reruns."""
    for factors in files:
        if not Path(svd_record(str(factors))).is_file():
            continue
        stats = svd_stat_path(factors)
        try:
            known = read_json(stats) if stats.is_file() else None
        except LaserflowError:
            known = None
        stat = file_stat(factors)  # taken before hashing: a file written meanwhile is checked next time
        if known != stat:
            check_svd_digest(factors, sha256_file(factors))
            write_json(stats, stat)
