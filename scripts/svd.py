"""Exact SVD factors of one (model, τ, ℓ) matrix, cached for every ρ of the sweep."""

from laserflow.cli import run_script
from laserflow.svd import compute_svd


def main():
    compute_svd(snakemake.input.model, snakemake.wildcards.tau, int(snakemake.wildcards.layer), snakemake.output.factors)


run_script(snakemake, main)
