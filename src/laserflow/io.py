"""File helpers: atomic writes (fsynced, disk-full as one line, a killed writer's leftovers removed),
strict JSON / JSON Lines, checksums, and the one-line error type."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class LaserflowError(Exception):
    """A bad input or a failed precondition, reported to the user as one line."""


# A temporary beside its target is ``.<target name>.<8 random characters>.tmp`` (mkstemp's and
# mkdtemp's names); its writer holds an exclusive flock on it until it is renamed or removed,
# so one that can be locked was left by a killed job.


def _temporary_pattern(target: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temporaries(target: str | os.PathLike) -> None:
    """Remove the temporaries of ``target`` that killed writers left (files or directories)."""
    target = Path(target)
    pattern = _temporary_pattern(target)
    try:
        names = [name for name in os.listdir(target.parent) if pattern.fullmatch(name)]
    except FileNotFoundError:
        return
    for name in names:
        path = target.parent / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # gone meanwhile, or a symlink: not ours
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its writer is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            log.info("removed %s, left by a killed job", path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


def _locked(path: Path) -> int:
    """A descriptor holding an exclusive flock on ``path``: its writer is alive while it is open."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))


@contextlib.contextmanager
def _disk_full_is_one_line(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        if err.errno in DISK_FULL:
            raise LaserflowError(f"{target}: the disk is full ({os.strerror(err.errno)}); free space and rerun") from None
        raise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; fsync it and rename it onto ``target`` only on
    success. A killed earlier writer's temporaries are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp_path = Path(tmp)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, 0o666 & ~_umask())
        with _disk_full_is_one_line(target):
            yield tmp_path
            _fsync(tmp_path)
            os.replace(tmp_path, target)
            _fsync(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        os.close(fd)


@contextlib.contextmanager
def scratch_dir(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory beside ``target`` for a job's scratch files, removed afterwards
    (or, if the job is killed, by the next writer of ``target``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    fd = _locked(tmp)
    try:
        with _disk_full_is_one_line(target):
            yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; fsync it and move it onto ``target`` only
    on success, with the permissions of files and directories created now (the temporary ones are
    private). A killed earlier writer's temporary directories are removed first."""
    target = Path(target)
    with scratch_dir(target) as tmp:
        yield tmp
        for path in [tmp, *tmp.rglob("*")]:
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())
        _fsync_tree(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        _fsync(target.parent)


def check_replaceable(target: str | os.PathLike, marker: str) -> None:
    """Refuse to replace ``target`` when it exists with other contents than ours: it is replaced
    only if missing, an empty directory, or a directory holding ``marker`` (what we write)."""
    target = Path(target)
    if not target.exists() or (target / marker).is_file() or (target.is_dir() and not any(target.iterdir())):
        return
    raise LaserflowError(f"{target}: exists and is not a laserflow output; move it away or delete it "
                         "(nothing was written)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def first_non_finite(value: Any, where: str = "") -> tuple[str, float] | None:
    """The dotted location and value of the first NaN or infinity in a JSON-like value, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _strict_dumps(path: str | os.PathLike, obj: Any, **options) -> str:
    """JSON text of ``obj``; a NaN or infinity (which JSON cannot hold) is a one-line error."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, **options)
    except ValueError:
        found = first_non_finite(obj)
        if found is None:
            raise
        raise LaserflowError(f"{path}: refusing to write the non-finite number {found[1]} at '{found[0]}'") from None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, _strict_dumps(path, obj, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise LaserflowError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's content; other bytes are a one-line error naming the first bad byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LaserflowError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def lookup(record: Any, dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; KeyError(dotted) when a part is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def _open_text(path: Path, mode: str, compressed: bool):
    if compressed:
        # mtime=0 and no file name keep the compressed bytes identical across runs.
        raw = gzip.GzipFile(filename="", fileobj=open(path, mode[0] + "b"), mode=mode[0] + "b", mtime=0)
        return _ClosingTextWrapper(raw)
    return open(path, mode, encoding="utf-8")


class _ClosingTextWrapper(io.TextIOWrapper):
    """A text wrapper over a GzipFile that also closes the underlying file object."""

    def __init__(self, raw: gzip.GzipFile):
        super().__init__(raw, encoding="utf-8")
        self._fileobj = raw.fileobj

    def close(self) -> None:
        super().close()
        self._fileobj.close()


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write rows as JSON Lines (gzip-compressed when the name ends in .gz), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with _open_text(tmp, "wt", path.suffix == ".gz") as handle:
            for row in rows:
                handle.write(_strict_dumps(path, row) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    rows = []
    with _open_text(path, "rt", path.suffix == ".gz") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise LaserflowError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
    return rows


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
