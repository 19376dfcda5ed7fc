"""The selected configuration of one (model, dataset) under the exact SVD and K randomized draws."""

from laserflow.cli import run_script
from laserflow.settings import RobustnessPaths
from laserflow.worker import run_job


def main():
    paths = RobustnessPaths.from_job(snakemake.input, snakemake.output)
    job = paths.job_values(snakemake.params.settings, snakemake.params.draws, snakemake.params.top_k)
    run_job("robustness", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
