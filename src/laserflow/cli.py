"""Glue for the workflow's scripts: logging to the rule's log file, threads, one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from .io import LaserflowError


def run_script(snakemake, main: Callable[[], None]) -> None:
    """Run ``main`` under a Snakemake ``script:`` job.

    Logs go to the rule's log file, torch uses the job's threads, and a LaserflowError becomes
    one line on stderr (and in the log) with exit status 1, leaving no output behind.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        open(log_path, "w").close()
        # Appending: a worker process (laserflow.worker) may write the same log meanwhile.
        handlers: list[logging.Handler] = [logging.FileHandler(log_path, mode="a")]
    else:
        handlers = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if os.environ.get("SLURM_JOB_ID"):
        logging.getLogger("laserflow").info("SLURM job %s", os.environ["SLURM_JOB_ID"])
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if "torch" in sys.modules:  # only scripts that compute import torch
        sys.modules["torch"].set_num_threads(max(1, int(snakemake.threads)))
    try:
        main()
    except LaserflowError as err:
        logging.getLogger("laserflow").error("%s", err)
        print(f"laserflow: error: {err}", file=sys.stderr)
        sys.exit(1)
    # Every output is already renamed into place; skip the interpreter's teardown of torch and
    # transformers, which costs ~2 s per job on a small CPU.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
