"""What the lowest singular components of one matrix store, for one (model, dataset)."""

from laserflow.cli import job_files, run_script
from laserflow.worker import run_job


def main():
    job = {"settings": snakemake.params.settings, "analysis": snakemake.params.analysis, "paths": job_files(snakemake)}
    run_job("analysis", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
