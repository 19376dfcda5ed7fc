"""Evaluate the base model or one configuration on one dataset."""

from laserflow.cli import run_script
from laserflow.sweep import run_from_job


def main():
    run_from_job(snakemake.input, snakemake.output, snakemake.wildcards, snakemake.params.evaluation)


run_script(snakemake, main)
