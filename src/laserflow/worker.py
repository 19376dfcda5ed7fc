"""A fork server that keeps torch and transformers imported between jobs, private to its user.

Importing torch and transformers costs a job ~7 s on a small CPU, far more than evaluating a small
model. A compute script therefore sends its job to a local worker process (started by the first
job, shared by the later ones) that has imported them once and forks a child per job; the child
writes the rule's log and outputs exactly as the script would, and its result or one-line error
comes back to the script. The worker never touches a GPU itself (children claim one as usual),
quits after ``LASERFLOW_WORKER_IDLE`` seconds without jobs (300), and is keyed by everything that
changes what it runs (``worker_key``), so another environment or an edited laserflow gets a fresh
worker. A child whose script is killed stops too. ``LASERFLOW_WORKER=0`` turns it off; so does a
SLURM job (each job on its own node, where a worker would outlive its job's allocation).

Privacy: the socket and its lock live in the user's private directory (``laserflow.runtime``);
the script checks that the listening process runs as its own user (``SO_PEERCRED``) before it
sends anything, the worker checks the same of each client, and a job carries only the
environment variables in ``JOB_ENVIRONMENT``, never the rest (``HF_TOKEN`` included).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from .cli import configure_job
from .io import LaserflowError
from .runtime import open_lock, private_dir

PACKAGE = Path(__file__).resolve().parent
START_TIMEOUT = 180.0  # seconds a script waits for a worker to come up
log = logging.getLogger(__name__)

# Read when Python, torch, transformers and huggingface_hub start (the import path, libraries, hub
# cache and offline switches): part of the worker's key and of its environment.
KEY_ENVIRONMENT = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONHASHSEED", "PYTHONSAFEPATH",
                   "LD_LIBRARY_PATH", "LD_PRELOAD", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# The rest of the worker's environment: what libraries need to run at all, and its idle time.
WORKER_ENVIRONMENT = KEY_ENVIRONMENT + ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LASERFLOW_WORKER_IDLE")
# Sent with each job, because a child reads them after the fork: which GPUs it sees and how CUDA's
# allocator and cuBLAS start (read when the child first uses CUDA, which the worker never does),
# where temporary files go, and whether the tokenizers may use threads.
JOB_ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTORCH_CUDA_ALLOC_CONF", "CUBLAS_WORKSPACE_CONFIG",
                   "TMPDIR", "TOKENIZERS_PARALLELISM")


def import_path() -> list[str]:
    """Where this process imports from (sys.path without the running script's own folder)."""
    return [os.path.realpath(entry) for entry in sys.path[1:] if entry]


def worker_key() -> str:
    """A hash of everything that changes what a worker runs: the interpreter, the import path and
    the environment read at start-up, the installed distributions (their versions), a
    sitecustomize/usercustomize module, and laserflow's own sources."""
    digest = hashlib.sha256()

    def add(*parts) -> None:
        digest.update(json.dumps(parts).encode() + b"\0")

    add(os.path.realpath(sys.executable), sys.version, sys.prefix, import_path())
    add({name: os.environ.get(name) for name in KEY_ENVIRONMENT})
    for entry in import_path():
        if os.path.isdir(entry):
            add(sorted(name for name in os.listdir(entry) if name.endswith((".dist-info", ".egg-info"))))
        for name in ("sitecustomize.py", "usercustomize.py"):
            path = Path(entry) / name
            if path.is_file():
                add(str(path), path.stat().st_mtime_ns, path.stat().st_size)
    for path in sorted(PACKAGE.rglob("*.py")):
        stat = path.stat()
        add(str(path), stat.st_mtime_ns, stat.st_size)
    return digest.hexdigest()[:16]


def socket_path() -> str:
    """The worker's socket, in the user's private directory (a LaserflowError if it is not private)."""
    return str(private_dir() / f"worker-{worker_key()}.sock")


# ---------------------------------------------------------------- the jobs a worker runs

# Job kind -> the module whose ``run_job(job: dict)`` runs it.
JOBS = {"evaluate": "laserflow.evaluate", "svd": "laserflow.svd", "robustness": "laserflow.robustness",
        "compose": "laserflow.compose", "analysis": "laserflow.analysis", "export": "laserflow.export"}


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
            env = {name: os.environ[name] for name in JOB_ENVIRONMENT if name in os.environ}
            _call(connection, {"kind": kind, "job": job, "threads": threads, "log": os.path.abspath(log_path),
                               "cwd": os.getcwd(), "env": env})
            return
    import torch

    torch.set_num_threads(max(1, threads))
    _run(kind, job)


# ---------------------------------------------------------------- client side

PEER_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    return PEER_CREDENTIALS.unpack(connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         PEER_CREDENTIALS.size))[1]


def _connect(path: str) -> socket.socket | None:
    """A connection to the worker listening at ``path``, only if it runs as this user."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        uid = peer_uid(client)
    except OSError:
        client.close()
        return None
    if uid != os.getuid():
        client.close()
        log.warning("%s is served by uid %d, not by this user; not sending it anything", path, uid)
        return None
    return client


def _connect_or_start() -> socket.socket | None:
    """A connection to the worker, starting it if none runs (one starter at a time)."""
    try:
        path = socket_path()
    except LaserflowError as err:
        log.warning("%s; running in this process", err)
        return None
    connection = _connect(path)
    if connection is not None:
        return connection
    try:
        lock = open_lock(Path(path + ".lock"))
    except OSError as err:
        log.warning("%s.lock: %s; running in this process", path, err.strerror)
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = _connect(path)
        if connection is not None:
            return connection
        environment = {name: os.environ[name] for name in WORKER_ENVIRONMENT if name in os.environ}
        subprocess.Popen([sys.executable, "-c", BOOT, path, json.dumps(import_path())], cwd="/", env=environment,
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            connection = _connect(path)
            if connection is not None:
                return connection
            time.sleep(0.1)
    finally:
        os.close(lock)
    log.warning("the laserflow worker did not start; running in this process")
    return None


# The worker imports from exactly where the script did.
BOOT = "import json, sys; sys.path[:] = json.loads(sys.argv[2]); from laserflow.worker import main; main(sys.argv[1])"


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

    from . import analysis, compose, evaluate, export, robustness, svd  # noqa: F401

    os.chdir("/")  # pins no mount between jobs; each child moves to its job's folder
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}"
    server.bind(tmp)
    os.chmod(tmp, 0o600)
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
            if peer_uid(connection) != os.getuid():  # the private directory already keeps others out
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                try:
                    _child(connection)
                finally:  # a child never returns into this loop, not even after a malformed request
                    os._exit(1)
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
    for name in JOB_ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update({name: value for name, value in request["env"].items() if name in JOB_ENVIRONMENT})
    tempfile.tempdir = None  # the job's TMPDIR, not one the worker looked up
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


def main(path: str) -> None:
    serve(path, float(os.environ.get("LASERFLOW_WORKER_IDLE", "300")))


if __name__ == "__main__":
    main(sys.argv[1])
