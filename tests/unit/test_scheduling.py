"""Snakemake's scheduler keeps one schedule re-check pending, however many rounds ask for one."""

from __future__ import annotations

import threading
import time

from snakemake.scheduling.job_scheduler import JobScheduler

from laserflow.scheduling import single_recheck


class Scheduler:
    def __init__(self):
        self._open_jobs = threading.Semaphore(0)

    def _schedule_reevalutation(self, delay):
        threading.Timer(delay, self._open_jobs.release).start()  # Snakemake's: one timer per call


def test_many_rounds_leave_one_pending_recheck_that_triggers_one_round():
    assert single_recheck(Scheduler)
    scheduler = Scheduler()
    before = threading.active_count()
    for _ in range(50):
        scheduler._schedule_reevalutation(0.2)
    assert threading.active_count() == before + 1
    time.sleep(0.5)
    assert scheduler._open_jobs.acquire(blocking=False)
    assert not scheduler._open_jobs.acquire(blocking=False)
    scheduler._schedule_reevalutation(0.05)  # after it fired, the next round starts a new one
    assert scheduler._open_jobs.acquire(timeout=2)


def test_it_applies_to_the_installed_snakemake_and_leaves_another_class_alone():
    assert single_recheck(type("Scheduler", (JobScheduler,), {}))  # a subclass: the real class stays as it is
    assert not single_recheck(type("Other", (), {}))
