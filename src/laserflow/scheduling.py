"""One pending schedule re-check in Snakemake's scheduler (applied by ``rules/common.smk``).

Snakemake 9 ends every scheduling round by starting a timer that triggers another round one
``max-jobs-per-timespan`` timespan later (1 s by default), and a round that a finished job started
starts one more such chain: after n finished jobs the scheduler runs about n rounds a second, each
checking the inputs of every ready job. On a few cores its main process then takes a core from the
jobs: in the search benchmark (2 cores) the last jobs, waiting beside a ready job of 600 inputs,
ran 10-15x slower. Rate limiting needs only one round a timespan after the last one, so
``single_recheck`` keeps at most one timer pending.
"""

from __future__ import annotations

import threading


def single_recheck(scheduler_class: type) -> bool:
    """Make ``scheduler_class`` (Snakemake's ``JobScheduler``) keep at most one re-check timer
    pending; False, and nothing changed, where it has no ``_schedule_reevalutation``."""
    if not hasattr(scheduler_class, "_schedule_reevalutation"):  # Snakemake's spelling
        return False

    def schedule_recheck(self, delay: float) -> None:
        pending = getattr(self, "_laserflow_recheck", None)
        if pending is not None and pending.is_alive():
            return
        self._laserflow_recheck = threading.Timer(delay, self._open_jobs.release)
        self._laserflow_recheck.start()

    scheduler_class._schedule_reevalutation = schedule_recheck
    return True
