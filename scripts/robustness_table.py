"""The robustness table: per cell, the exact truncation beside the spread of the SVD draws and the paper's number."""

from laserflow.cli import run_script
from laserflow.paper import read_paper_table
from laserflow.records import read_robustness
from laserflow.report import write_robustness


def main():
    write_robustness(
        read_robustness(snakemake.input.robustness),
        snakemake.output.csv,
        snakemake.output.md,
        snakemake.output.tex,
        paper=read_paper_table(snakemake.input.paper),
    )


run_script(snakemake, main)
