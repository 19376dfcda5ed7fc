"""The selected (τ, ℓ, ρ) per cell and the validation accuracy that chose it (the paper's Table 3)."""

from laserflow.cli import run_script
from laserflow.records import read_selections
from laserflow.report import write_hyperparameters


def main():
    write_hyperparameters(
        read_selections(snakemake.input.selections, snakemake.input.chosen), snakemake.output.csv, snakemake.output.md, snakemake.output.tex
    )


run_script(snakemake, main)
