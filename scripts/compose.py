"""Greedy composition of LASER edits across layers for one (model, dataset)."""

from laserflow.cli import job_files, run_script
from laserflow.worker import run_job


def main():
    job = {"settings": snakemake.params.settings, "plan": snakemake.params.plan, "paths": job_files(snakemake)}
    run_job("compose", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
