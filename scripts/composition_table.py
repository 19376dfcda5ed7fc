"""The composition table: base, best single-layer LASER and greedy composite per cell."""

from laserflow.cli import run_script
from laserflow.records import read_composes
from laserflow.report import write_composition_table


def main():
    files = list(snakemake.input.composes)
    write_composition_table(read_composes(files), files, snakemake.output.csv, snakemake.output.md,
                            snakemake.output.tex)


run_script(snakemake, main)
