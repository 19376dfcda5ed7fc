"""Select (τ, ℓ, ρ) on the validation part for one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.selection import select_files


def main():
    select_files(
        snakemake.input.base,
        list(snakemake.input.runs),
        snakemake.output.selection,
        snakemake.input.dataset,
    )


run_script(snakemake, main)
