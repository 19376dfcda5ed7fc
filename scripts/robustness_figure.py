"""The robustness figure: test accuracy per SVD draw, the exact truncation, the paper and the base, per cell."""

from laserflow.cli import run_script
from laserflow.figures import plot_robustness
from laserflow.paper import read_paper_table
from laserflow.records import read_robustness


def main():
    plot_robustness(
        read_robustness(snakemake.input.robustness),
        read_paper_table(snakemake.input.paper),
        snakemake.output.png,
        snakemake.output.pdf,
        snakemake.input.style,
    )


run_script(snakemake, main)
