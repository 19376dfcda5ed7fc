"""A dataset's raw source -> canonical JSON Lines, in the protocol's order."""

from laserflow.cli import run_script
from laserflow.data.prepare import prepare_configured


def main():
    prepare_configured(
        snakemake.wildcards.dataset,
        snakemake.params.spec,
        snakemake.input.raw,
        snakemake.output.dataset,
        snakemake.input.tokenizer or None,
        snakemake.output.source,
    )


run_script(snakemake, main)
