"""LaTeX macros of the numbers a paper text quotes (largest and mean LASER gain, cells reproduced)."""

from laserflow.cli import run_script
from laserflow.paper import read_paper_table
from laserflow.records import read_selections
from laserflow.report import write_numbers


def main():
    write_numbers(
        read_selections(snakemake.input.selections, snakemake.input.chosen),
        snakemake.output.tex,
        read_paper_table(snakemake.input.paper),
        snakemake.params.tolerance,
    )


run_script(snakemake, main)
