"""The user's private runtime directory, where the worker's socket and the job locks live out of
other local users' reach, and lock files opened there without following symlinks."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .io import LaserflowError


def check_private(path: Path) -> None:
    """``path`` is a real directory (not a symlink) of this user that no one else may enter."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise LaserflowError(f"{path}: not a directory but {'a symlink' if stat.S_ISLNK(info.st_mode) else 'a file'}; "
                             f"laserflow keeps its worker and locks there only in a private directory (remove it)")
    if info.st_uid != os.getuid():
        raise LaserflowError(f"{path}: owned by uid {info.st_uid}, not by this user ({os.getuid()}); "
                             f"laserflow keeps its worker and locks there only in a private directory (remove it)")
    if info.st_mode & 0o077:
        raise LaserflowError(f"{path}: mode {stat.S_IMODE(info.st_mode):o} lets other users in; "
                             f"laserflow keeps its worker and locks there only in a private directory (chmod 700 it)")


def private_dir() -> Path:
    """``$XDG_RUNTIME_DIR/laserflow`` when that is this user's private directory, otherwise
    ``<temporary directory>/laserflow-<uid>``; created with mode 0700 and checked, never trusted."""
    base = None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        try:
            check_private(Path(runtime))
            base = Path(runtime) / "laserflow"
        except (OSError, LaserflowError):
            base = None
    if base is None:
        base = Path(tempfile.gettempdir()) / f"laserflow-{os.getuid()}"
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    check_private(base)
    return base


def open_lock(path: Path) -> int:
    """A descriptor of a lock file in the private directory (created 0600, never through a symlink)."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
