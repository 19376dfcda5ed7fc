"""Evaluate the base model or one configuration on one dataset."""

from laserflow.cli import run_script
from laserflow.worker import run_job


def main():
    job = {
        "inputs": dict(snakemake.input.items()),
        "outputs": dict(snakemake.output.items()),
        "wildcards": dict(snakemake.wildcards.items()),
        "params": snakemake.params.evaluation,
    }
    run_job("evaluate", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
