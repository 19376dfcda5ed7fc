"""Export one (model, dataset)'s selected configuration (or its export.edits list) with a model card."""

from laserflow.cli import run_script
from laserflow.export import job_values
from laserflow.worker import run_job


def main():
    job = job_values(snakemake.params.settings, snakemake.params.options, snakemake.input, snakemake.output.export)
    run_job("export", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
