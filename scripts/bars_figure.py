"""Table 1 as a bar chart: base, LASER, paper and majority-class accuracy per (dataset, model)."""

from laserflow.cli import run_script
from laserflow.figures import plot_table1_bars


def main():
    plot_table1_bars(snakemake.input.table, snakemake.output.png, snakemake.output.pdf, snakemake.input.style)


run_script(snakemake, main)
