"""Fetch a dataset's splits from the Hugging Face hub at a pinned revision."""

from laserflow.cli import run_script
from laserflow.data.hub import fetch_configured


def main():
    fetch_configured(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.output.raw)


run_script(snakemake, main)
