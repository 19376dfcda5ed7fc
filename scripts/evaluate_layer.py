"""Evaluate every configuration of one layer of a (model, dataset) search in one job (a layer group)."""

from laserflow.cli import run_script
from laserflow.settings import EvaluationPaths, job_values
from laserflow.worker import run_job


def main():
    outputs = zip(snakemake.params.configurations, snakemake.output.summaries, snakemake.output.records)
    runs = [(key | {"layer": snakemake.wildcards.layer}, EvaluationPaths.from_job(snakemake.input, summary, records))
            for key, summary, records in outputs]
    run_job("evaluate", job_values(snakemake.params.settings, runs), snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
