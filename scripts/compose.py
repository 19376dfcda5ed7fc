"""Greedy composition of LASER edits across layers for one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.worker import run_job


def main():
    inputs, outputs = snakemake.input, snakemake.output
    paths = {
        "model": inputs.model,
        "dataset": inputs.dataset,
        "manifest": inputs.manifest,
        "selection": inputs.selection,
        "svd": list(inputs.svd),
        "steps": outputs.steps,
        "summary": outputs.summary,
        "records": outputs.records,
    }
    job = {"settings": snakemake.params.settings, "plan": snakemake.params.plan, "paths": paths}
    run_job("compose", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
