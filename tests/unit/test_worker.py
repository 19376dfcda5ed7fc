"""The fork-server worker: the same files as an in-process job, errors back as one line, a fresh
worker for edited sources."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from laserflow import worker
from laserflow.data.prepare import prepare_dataset
from laserflow.io import LaserflowError, read_json, read_jsonl
from laserflow.settings import EvaluationPaths, EvaluationSettings, ScoringOptions, SvdSettings, job_values


def evaluation_job(model_dir, dataset, out):
    settings = EvaluationSettings("tiny", "fever", scoring=ScoringOptions(batch_size=8),
                                  svd=SvdSettings(mode="randomized", seed=3))
    key = {"model": "tiny", "dataset": "fever", "intervention": "laser", "tau": "fc_in", "layer": "1",
           "level": "rate9"}
    paths = EvaluationPaths(str(model_dir), str(dataset), str(out / "run.json"), str(out / "run.items.jsonl.gz"))
    return job_values(settings.as_dict(), [(key, paths)])


@pytest.fixture(scope="module")
def fever(tmp_path_factory, repo):
    path = tmp_path_factory.mktemp("data") / "fever.jsonl"
    prepare_dataset("fever", repo / "data" / "demo" / "fever.json", path)
    return path


def test_a_worker_job_writes_what_the_in_process_job_writes(tiny_models, fever, tmp_path, monkeypatch):
    results = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("LASERFLOW_WORKER", mode)
        out = tmp_path / mode
        out.mkdir()
        worker.run_job("evaluate", evaluation_job(tiny_models["llama"], fever, out), 1, str(out / "job.log"))
        summary = read_json(out / "run.json")
        summary.pop("timing")
        summary["provenance"].pop("target")
        results[mode] = (summary, read_jsonl(out / "run.items.jsonl.gz"))
    assert results["1"] == results["0"]
    assert results["1"][0]["scoring"]["method"] == "labels"
    # The worker child wrote the job's log.
    assert "scoring 82 of 82 items (all)" in (tmp_path / "1" / "job.log").read_text()
    assert os.path.exists(worker.socket_path())


def test_a_worker_job_error_comes_back_as_the_same_one_line_error(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(LaserflowError) as err:
        worker.run_job("evaluate", evaluation_job(tiny_models["llama"], empty, tmp_path), 1, str(tmp_path / "job.log"))
    assert str(err.value) == f"{empty}: the dataset has no items"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.jsonl", "job.log"]


def test_edited_sources_get_a_fresh_worker(tmp_path, monkeypatch):
    package = tmp_path / "laserflow"
    shutil.copytree(worker.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(worker, "PACKAGE", package)
    before = worker.socket_path()
    assert worker.socket_path() == before
    module = package / "scoring.py"
    os.utime(module, ns=(time.time_ns(), module.stat().st_mtime_ns + 1_000_000))
    assert worker.socket_path() != before


def test_the_worker_is_off_in_a_slurm_job_or_when_asked(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    assert worker.worker_enabled()
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    assert not worker.worker_enabled()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("LASERFLOW_WORKER", "0")
    assert not worker.worker_enabled()


def test_an_idle_worker_quits_and_removes_its_socket(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "worker.sock"
    process = subprocess.Popen([sys.executable, "-m", "laserflow.worker", str(path)],
                               env=dict(os.environ, LASERFLOW_WORKER_IDLE="1"))
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    assert process.wait(timeout=60) == 0
    assert not path.exists()
