"""Exact SVD factors of one (model, τ, ℓ) matrix, cached for every ρ of the sweep."""

from laserflow.cli import run_script
from laserflow.worker import run_job


def main():
    job = {
        "model": snakemake.input.model,
        "manifest": snakemake.input.manifest,
        "tau": snakemake.wildcards.tau,
        "layer": snakemake.wildcards.layer,
        "factors": snakemake.output.factors,
    }
    run_job("svd", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
