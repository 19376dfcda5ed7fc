"""A fork server that keeps torch and transformers imported between jobs.

Importing torch and transformers costs a job ~7 s on a small CPU, far more than evaluating a small
model. A compute script therefore sends its job to a local worker process (started by the first
job, shared by the later ones) that has imported them once and forks a child per job; the child
writes the rule's log and outputs exactly as the script would, and its result or one-line error
comes back to the script. The worker never touches a GPU itself (children claim one as usual),
quits after ``LASERFLOW_WORKER_IDLE`` seconds without jobs (300), and is keyed by the package's
source files, so an edited laserflow gets a fresh worker. A child whose script is killed stops
too. ``LASERFLOW_WORKER=0`` turns it off; so does a SLURM job (each job on its own node, where a
worker would outlive its job's allocation).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from .cli import configure_job
from .io import LaserflowError

PACKAGE = Path(__file__).resolve().parent
START_TIMEOUT = 180.0  # seconds a script waits for a worker to come up
log = logging.getLogger(__name__)


def socket_path() -> str:
    """The worker's socket: one per user, Python environment and version of the package's sources."""
    digest = hashlib.sha256(f"{sys.prefix}:{os.path.realpath(sys.executable)}".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return f"/tmp/laserflow-worker-{os.getuid()}-{digest.hexdigest()[:16]}.sock"


# ---------------------------------------------------------------- the jobs a worker runs

# Job kind -> the module whose ``run_job(job: dict)`` runs it.
JOBS = {"evaluate": "laserflow.evaluate", "svd": "laserflow.svd", "export": "laserflow.export"}


def _run(kind: str, job: dict) -> None:
    import importlib

    importlib.import_module(JOBS[kind]).run_job(job)


def worker_enabled() -> bool:
    return os.environ.get("LASERFLOW_WORKER", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def run_job(kind: str, job: dict, threads: int, log_path: str | None) -> None:
    """Run a job (its plain values) through the worker when enabled and reachable, otherwise in
    this process; the script has already set itself up with ``configure_job``."""
    if log_path and worker_enabled():
        connection = _connect_or_start()
        if connection is not None:
            _call(connection, {"kind": kind, "job": job, "threads": threads, "log": os.path.abspath(log_path),
                               "cwd": os.getcwd(), "env": dict(os.environ)})
            return
    import torch

    torch.set_num_threads(max(1, threads))
    _run(kind, job)


# ---------------------------------------------------------------- client side


def _connect(path: str) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        return client
    except OSError:
        client.close()
        return None


def _connect_or_start() -> socket.socket | None:
    """A connection to the worker, starting it if none runs (one starter at a time)."""
    path = socket_path()
    connection = _connect(path)
    if connection is not None:
        return connection
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = _connect(path)
        if connection is not None:
            return connection
        subprocess.Popen([sys.executable, "-m", "laserflow.worker", path], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            connection = _connect(path)
            if connection is not None:
                return connection
            time.sleep(0.1)
    log.warning("the laserflow worker did not start; running in this process")
    return None


def _call(connection: socket.socket, request: dict) -> None:
    with connection, connection.makefile("rwb") as stream:
        stream.write(json.dumps(request).encode() + b"\n")
        stream.flush()
        line = stream.readline()
    if not line:
        raise RuntimeError(f"the laserflow worker's process for this job died; see {request['log']}")
    reply = json.loads(line)
    if reply["status"] == "error":
        raise LaserflowError(reply["message"])
    if reply["status"] == "crash":
        raise RuntimeError("in the laserflow worker:\n" + reply["traceback"])


# ---------------------------------------------------------------- server side


def serve(path: str, idle_seconds: float) -> None:
    """Import the heavy modules once, then fork a child per connection until idle."""
    import torch  # noqa: F401  (imported here so that every child inherits it)
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer  # noqa: F401
    from transformers.models.gptj import modeling_gptj  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401
    from transformers.models.phi import modeling_phi  # noqa: F401
    from transformers.models.roberta import modeling_roberta  # noqa: F401

    from . import evaluate, export, svd  # noqa: F401

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    server.bind(tmp)
    server.listen(64)
    os.rename(tmp, path)  # clients connect only once the worker listens
    bound = os.stat(path).st_ino
    server.settimeout(1.0)
    children: set[int] = set()
    last_job = time.monotonic()
    try:
        while True:
            children -= {pid for pid in list(children) if os.waitpid(pid, os.WNOHANG)[0]}
            try:
                connection, _ = server.accept()
            except socket.timeout:
                if not children and time.monotonic() - last_job > idle_seconds:
                    return
                continue
            last_job = time.monotonic()
            pid = os.fork()
            if pid == 0:
                server.close()
                _child(connection)
            connection.close()
            children.add(pid)
    finally:
        if os.path.exists(path) and os.stat(path).st_ino == bound:  # not a successor's socket
            os.unlink(path)
        server.close()


def _child(connection: socket.socket) -> None:
    """Run one job as its script would, reply, and exit without returning."""
    stream = connection.makefile("rwb")
    request = json.loads(stream.readline())
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    # The script waits for the reply; if it is killed, stop this job too.
    threading.Thread(target=_exit_on_hangup, args=(connection,), daemon=True).start()
    import torch  # noqa: F401  (imported before the set-up, which sets its threads)

    configure_job(request["threads"], request["log"], fresh=False)  # the script emptied the log
    try:
        _run(request["kind"], request["job"])
        reply = {"status": "ok"}
    except LaserflowError as err:  # the script logs it
        reply = {"status": "error", "message": str(err)}
    except BaseException:  # noqa: BLE001  (reported to the script, which fails the job)
        logging.getLogger("laserflow").exception("job failed")
        reply = {"status": "crash", "traceback": traceback.format_exc()}
    logging.shutdown()
    sys.stderr.flush()
    try:
        stream.write(json.dumps(reply).encode() + b"\n")
        stream.flush()
    finally:
        os._exit(0)


def _exit_on_hangup(connection: socket.socket) -> None:
    try:
        connection.recv(1)
    finally:
        os._exit(1)


if __name__ == "__main__":
    serve(sys.argv[1], float(os.environ.get("LASERFLOW_WORKER_IDLE", "300")))
