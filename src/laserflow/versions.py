"""Software versions and laserflow's git commit, for every result's provenance.

The commit is read from the checkout's ``.git`` files (HEAD, loose or packed refs, worktrees),
never by running ``git``: a job runs no program found on its ``PATH``.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # src/laserflow/versions.py -> the repository
PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "snakemake", "laserflow")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def software_versions() -> dict:
    """Versions of the packages a result depends on, and laserflow's git commit when available."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    out["laserflow_commit"] = git_commit(CHECKOUT)
    return out


def _git_dirs(checkout: Path) -> tuple[Path, Path] | None:
    """The checkout's git directory and the common one (they differ in a linked worktree)."""
    dot_git = checkout / ".git"
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text().strip()
        if not text.startswith("gitdir:"):
            return None
        git_dir = (checkout / text.removeprefix("gitdir:").strip()).resolve()
    elif dot_git.is_dir():
        git_dir = dot_git
    else:
        return None
    common = git_dir / "commondir"
    return git_dir, (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir


def _ref(common: Path, git_dir: Path, name: str) -> str | None:
    for folder in (git_dir, common):
        loose = folder / name
        if loose.is_file():
            return loose.read_text().strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == name:
                return parts[0]
    return None


def git_commit(checkout: Path) -> str | None:
    """The commit checked out at ``checkout``, or None when it is not a git checkout."""
    try:
        dirs = _git_dirs(checkout)
        if dirs is None:
            return None
        git_dir, common = dirs
        head = (git_dir / "HEAD").read_text().strip()
        commit = _ref(common, git_dir, head.removeprefix("ref:").strip()) if head.startswith("ref:") else head
    except OSError:
        return None
    return commit if commit and COMMIT.fullmatch(commit) else None
