"""File helpers: atomic writes, JSON / JSON Lines, checksums, and the one-line error type."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class LaserflowError(Exception):
    """A bad input or a failed precondition, reported to the user as one line."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; move it onto ``target`` only on success, with
    the permissions of files and directories created now (the temporary ones are private)."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        for path in [tmp, *tmp.rglob("*")]:
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


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


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise LaserflowError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


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
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


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
