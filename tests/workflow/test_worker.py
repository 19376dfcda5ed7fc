"""The fork-server worker: the same files as an in-process job, errors back as one line, a fresh
worker for edited sources or another environment, and privacy from other local users (acted out
as nobody where the tests run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    path = tmp_path / "worker.sock"
    process = subprocess.Popen([sys.executable, "-m", "laserflow.worker", str(path)],
                               env=dict(os.environ, LASERFLOW_WORKER_IDLE="1"))
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    assert process.wait(timeout=60) == 0
    assert not path.exists()


# ---------------------------------------------------------------- privacy

NOBODY = 65534
as_second_user = pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                                    reason="acting as a second user (nobody) needs root and setpriv")

# Run as nobody: listen at argv[1] and append whatever arrives to argv[2]; argv[3] says whether it could.
LISTENER = """
import os, socket, sys
path, received, ready = sys.argv[1:4]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(8)
except OSError as err:
    open(ready, "w").write("refused: " + err.strerror)
    raise SystemExit
open(ready, "w").write("listening")
while True:
    connection, _ = server.accept()
    connection.settimeout(5)
    try:
        while chunk := connection.recv(65536):
            open(received, "ab").write(chunk)
    except socket.timeout:
        pass
    connection.close()
"""


def as_nobody(*command) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


@pytest.fixture
def shared():
    """A folder every user may write in (pytest's own temporary folders are private to root)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="laserflow-test-", dir="/tmp")
    os.chmod(path, 0o1777)
    yield Path(path)
    shutil.rmtree(path)


@pytest.fixture
def fresh_worker(tmp_path, monkeypatch):
    """A worker key no running worker has (a copy of the package's sources); it quits soon after."""
    package = tmp_path / "sources"
    shutil.copytree(worker.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(worker, "PACKAGE", package)
    monkeypatch.setenv("LASERFLOW_WORKER_IDLE", "5")


def listen_as_nobody(path, shared) -> tuple[subprocess.Popen, Path, str]:
    received, ready = shared / "received", shared / "ready"
    listener = subprocess.Popen(as_nobody(sys.executable, "-c", LISTENER, str(path), str(received), str(ready)))
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert listener.poll() in (None, 0) and time.monotonic() < deadline, "the listener did not start"
        time.sleep(0.05)
    return listener, received, ready.read_text()


def svd_job(tiny_models, out) -> dict:
    return {"model": str(tiny_models["gptj"]), "tau": "fc_in", "layer": "1", "factors": str(out / "1.pt")}


@as_second_user
def test_a_second_user_cannot_listen_in_place_of_the_worker(tiny_models, shared, tmp_path, fresh_worker, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    listener, received, state = listen_as_nobody(worker.socket_path(), shared)
    try:
        worker.run_job("svd", svd_job(tiny_models, tmp_path), 1, str(tmp_path / "job.log"))
    finally:
        listener.kill()
        listener.wait()
    assert state.startswith("refused: ")  # the socket's folder is root's, mode 0700
    assert not received.exists()
    assert (tmp_path / "1.pt").exists()


@as_second_user
def test_a_folder_a_second_user_made_first_is_refused(tiny_models, shared, tmp_path, monkeypatch, caplog):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    planted = shared / f"laserflow-{os.getuid()}"
    subprocess.run(as_nobody("mkdir", "-m", "777", str(planted)), check=True)
    worker.run_job("svd", svd_job(tiny_models, tmp_path), 1, str(tmp_path / "job.log"))
    assert f"{planted}: owned by uid {NOBODY}, not by this user (0)" in caplog.text
    assert "running in this process" in caplog.text
    assert list(planted.iterdir()) == [] and (tmp_path / "1.pt").exists()


@as_second_user
def test_the_client_sends_nothing_to_a_listener_of_another_user(shared):
    path = shared / "worker.sock"
    listener, received, state = listen_as_nobody(path, shared)
    try:
        assert state == "listening"
        assert worker._connect(str(path)) is None
        time.sleep(0.5)
    finally:
        listener.kill()
        listener.wait()
    assert not received.exists()


@as_second_user
def test_a_second_user_cannot_connect_to_the_worker_even_under_umask_000(tiny_models, tmp_path, fresh_worker,
                                                                           monkeypatch):
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    previous = os.umask(0)
    try:
        worker.run_job("svd", svd_job(tiny_models, tmp_path), 1, str(tmp_path / "job.log"))
    finally:
        os.umask(previous)
    path = worker.socket_path()
    assert os.path.exists(path)  # the job went through a worker
    connect = f"import socket; socket.socket(socket.AF_UNIX).connect({path!r})"
    result = subprocess.run(as_nobody(sys.executable, "-c", connect), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "PermissionError: [Errno 13] Permission denied"


def test_a_planted_symlink_is_refused(tiny_models, tmp_path, monkeypatch, caplog):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"laserflow-{os.getuid()}").symlink_to(elsewhere)
    out = tmp_path / "out"
    out.mkdir()
    worker.run_job("svd", svd_job(tiny_models, out), 1, str(out / "job.log"))
    assert f"laserflow-{os.getuid()}: not a directory but a symlink" in caplog.text
    assert list(elsewhere.iterdir()) == [] and (out / "1.pt").exists()


def test_a_lock_symlink_truncates_nothing(tiny_models, tmp_path, fresh_worker, monkeypatch):
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lock = Path(worker.socket_path() + ".lock")
    lock.symlink_to(victim)
    try:
        worker.run_job("svd", svd_job(tiny_models, tmp_path), 1, str(tmp_path / "job.log"))
    finally:
        lock.unlink()
    assert victim.read_text() == "precious" and (tmp_path / "1.pt").exists()


def test_a_job_carries_only_the_environment_it_needs(monkeypatch):
    sent = []
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setattr(worker, "_connect_or_start", lambda: object())
    monkeypatch.setattr(worker, "_call", lambda connection, request: sent.append(request))
    worker.run_job("svd", {}, 1, "job.log")
    assert sent[0]["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert "HF_TOKEN" not in sent[0]["env"] and set(sent[0]["env"]) <= set(worker.JOB_ENVIRONMENT)


def test_checkouts_with_different_pythonpath_get_different_workers(tmp_path):
    paths = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path / name),
                                                                       os.environ.get("PYTHONPATH")])))
        result = subprocess.run([sys.executable, "-c", "from laserflow.worker import socket_path; print(socket_path())"],
                                env=env, capture_output=True, text=True, check=True)
        paths.append(result.stdout.strip())
    assert paths[0] != paths[1]


def test_the_worker_leaves_the_job_folder(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("LASERFLOW_WORKER", "1")
    monkeypatch.chdir(tmp_path)
    worker.run_job("svd", svd_job(tiny_models, tmp_path), 1, str(tmp_path / "job.log"))
    path = worker.socket_path().encode()
    found = {entry.name: _parent(entry) for entry in Path("/proc").iterdir() if entry.name.isdigit()
             and path in _read(entry / "cmdline") and b"laserflow.worker" in _read(entry / "cmdline")}
    (pid,) = [pid for pid, parent in found.items() if parent not in found]  # not a job's child
    assert os.readlink(f"/proc/{pid}/cwd") == "/"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _parent(entry: Path) -> str:
    """A process's parent id."""
    return next((line.split()[1] for line in _read(entry / "status").decode().splitlines()
                 if line.startswith("PPid:")), "")
