"""Job plumbing for the workflow's scripts: one set-up for every job (logs, progress bars and
threads), and one-line errors."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Callable, TextIO

from .io import LaserflowError

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


def configure_job(threads: int, log_path: str | None, fresh: bool = True) -> TextIO:
    """Set this process up as a job: its logging, stdout and stderr (progress bars included) go to
    the rule's log, emptied first when ``fresh``; torch, when imported, uses ``threads``.

    Returns a stream to the stderr the process started with (the console), for the job's one-line
    error. The script process and a worker child (``laserflow.worker``) both call this, so a job's
    log reads the same either way.
    """
    console = os.fdopen(os.dup(2), "w", buffering=1)
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        descriptor = os.open(log_path, flags, 0o666)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        os.close(descriptor)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True, format=LOG_FORMAT)
    if os.environ.get("SLURM_JOB_ID"):
        logging.getLogger("laserflow").info("SLURM job %s", os.environ["SLURM_JOB_ID"])
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if "torch" in sys.modules:  # only jobs that compute import torch
        sys.modules["torch"].set_num_threads(max(1, int(threads)))
    return console


def run_script(snakemake, main: Callable[[], None]) -> None:
    """Run ``main`` as a Snakemake ``script:`` job.

    A LaserflowError becomes one line in the log and on the console, with exit status 1, leaving
    no output behind; any other exception is a bug and shows its traceback in both.
    """
    console = configure_job(snakemake.threads, snakemake.log[0] if len(snakemake.log) else None)
    try:
        main()
    except LaserflowError as err:
        logging.getLogger("laserflow").error("%s", err)
        print(f"laserflow: error: {err}", file=console)
        sys.exit(1)
    except Exception:  # a bug: the traceback goes to the log and the console
        logging.getLogger("laserflow").exception("job failed")
        traceback.print_exc(file=console)
        sys.exit(1)
    # Every output is already renamed into place; skip the interpreter's teardown of torch and
    # transformers, which costs ~2 s per job on a small CPU.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def job_files(snakemake) -> dict:
    """A job's named input and output files as plain values (a list where a name holds several);
    the SVD records are inputs only for their hashes, each is read beside its factors file."""
    return {name: value if isinstance(value, str) else list(value)
            for files in (snakemake.input, snakemake.output) for name, value in files.items()
            if name != "svd_records"}
