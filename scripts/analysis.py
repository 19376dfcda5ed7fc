"""What the lowest singular components of one matrix store, for one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.worker import run_job


def main():
    inputs, outputs = snakemake.input, snakemake.output
    paths = {
        "model": inputs.model,
        "dataset": inputs.dataset,
        "manifest": inputs.manifest,
        "selection": str(inputs.selection) if inputs.selection else None,
        "svd": list(inputs.svd),
        "summary": outputs.summary,
        "records": outputs.records,
    }
    job = {"settings": snakemake.params.settings, "analysis": snakemake.params.analysis, "paths": paths}
    run_job("analysis", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
