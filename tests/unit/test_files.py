"""Writing files: a killed writer's leftovers are removed by the next writer, a full disk is one
line and leaves nothing, outputs are fsynced before the rename, JSON holds no NaN."""

from __future__ import annotations

import errno
import fcntl
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from laserflow import io as lf_io
from laserflow.io import LaserflowError, atomic_dir, atomic_path, write_json, write_jsonl


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "counterfact.raw"
    stale_file = tmp_path / ".counterfact.raw.k1ll3d_0.tmp"
    stale_file.write_text("half a download")
    live = tmp_path / ".counterfact.raw.w0rk1ng_.tmp"  # a writer still holds its lock
    live.write_text("being written")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    other = tmp_path / ".counterfact.raw.json.abcdefgh.tmp"  # another target's temporary
    other.write_text("not ours")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("done")
    finally:
        os.close(held)
    assert target.read_text() == "done"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([target.name, live.name, other.name])


def test_a_half_copied_snapshot_directory_is_removed_by_the_next_snapshot(tmp_path):
    target = tmp_path / "models" / "gptj"
    stale = tmp_path / "models" / ".gptj.abc_1234.tmp"
    (stale / "shards").mkdir(parents=True)
    (stale / "shards" / "model-00001.safetensors").write_bytes(b"\0" * 1000)
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert sorted(path.name for path in target.parent.iterdir()) == ["gptj"]
    assert [path.name for path in target.iterdir()] == ["config.json"]


def test_outputs_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda src, dst: events.append(("replace", str(src))) or replace(src, dst))
    write_json(tmp_path / "summary.json", {"acc": 1.0})
    (tmp,) = [path for kind, path in events if kind == "replace"]
    assert events.index(("fsync", tmp)) < events.index(("replace", tmp))


@pytest.fixture(params=["tmpfs", "patched"])
def full_disk(request, tmp_path, monkeypatch):
    """A folder whose disk is full: a 64 KiB tmpfs (needs root and mount), or writes that fail
    with ENOSPC after half the data."""
    folder = tmp_path / "full"
    folder.mkdir()
    if request.param == "tmpfs":
        if os.getuid() != 0 or shutil.which("mount") is None or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode:
            pytest.skip("mounting a tmpfs needs root")
        request.addfinalizer(lambda: subprocess.run(["umount", str(folder)], check=True))
    else:
        write = Path.write_text

        def half_then_full(path, text, *args, **kwargs):
            write(path, text[: len(text) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Path, "write_text", half_then_full)
    return folder


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(full_disk):
    target = full_disk / "base.json"
    with pytest.raises(LaserflowError) as err:
        write_json(target, {"records": ["x" * 100] * 1000})
    assert str(err.value) == f"{target}: the disk is full (No space left on device); free space and rerun"
    assert list(full_disk.iterdir()) == []


def test_json_output_refuses_nan_and_names_where_it_is(tmp_path):
    target = tmp_path / "run.json"
    with pytest.raises(LaserflowError) as err:
        write_json(target, {"metrics": {"val": {"acc": 50.0, "logloss": math.nan}}})
    assert str(err.value) == f"{target}: refusing to write the non-finite number nan at 'metrics.val.logloss'"
    with pytest.raises(LaserflowError) as err:
        write_jsonl(tmp_path / "run.items.jsonl.gz", [{"index": 0, "answer_logprob": -math.inf}])
    assert str(err.value).endswith("refusing to write the non-finite number -inf at 'answer_logprob'")
    assert list(tmp_path.iterdir()) == []


def test_bytes_that_are_not_utf8_are_one_line(tmp_path):
    raw = tmp_path / "fever.json"
    raw.write_bytes(b'{"splits": {"paper_dev": [{"claim": "caf\xe9"}]}}')
    with pytest.raises(LaserflowError) as err:
        lf_io.read_json(raw)
    assert str(err.value) == f"{raw}: not UTF-8 text (byte 0xe9 at offset 40)"
