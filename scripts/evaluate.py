"""Evaluate the base model or one configuration on one dataset."""

from laserflow.cli import run_script
from laserflow.settings import EvaluationPaths, job_values
from laserflow.worker import run_job


def main():
    paths = EvaluationPaths.from_job(snakemake.input, snakemake.output.summary, snakemake.output.records)
    job = job_values(snakemake.params.settings, [(dict(snakemake.wildcards.items()), paths)])
    run_job("evaluate", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
