"""Table 1: base vs LASER test accuracy and log-loss with the chosen (τ, ℓ, ρ), beside the paper's."""

from laserflow.cli import run_script
from laserflow.paper import read_paper_table
from laserflow.records import read_selections
from laserflow.report import write_table1


def main():
    write_table1(
        read_selections(snakemake.input.selections, snakemake.input.chosen),
        snakemake.output.csv,
        snakemake.output.md,
        tex_path=snakemake.output.tex,
        paper=read_paper_table(snakemake.input.paper),
        tolerance=snakemake.params.tolerance,
    )


run_script(snakemake, main)
