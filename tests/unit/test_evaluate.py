"""An evaluation job's provenance, recorded without running git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from laserflow.evaluate import software_versions

REPO = Path(__file__).resolve().parents[2]


def test_provenance_records_the_commit_without_running_git_from_the_path(tmp_path, monkeypatch):
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    commit = subprocess.run([git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    marker = tmp_path / "ran"
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 0000000000000000000000000000000000000000\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert software_versions()["laserflow_commit"] == commit
    assert not marker.exists()

