"""Accuracy, generic answers and hidden-state similarity against the share of the lowest singular components kept."""

from laserflow.cli import run_script
from laserflow.figures import plot_analysis
from laserflow.records import ANALYSIS_KEYS, read_record


def main():
    plot_analysis(read_record(snakemake.input.analysis, ANALYSIS_KEYS), snakemake.output.png, snakemake.output.pdf,
                  snakemake.input.style)


run_script(snakemake, main)
