"""Validation-accuracy heatmaps (layer × reduction, one panel per τ) of one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.figures import plot_val_heatmaps
from laserflow.records import BASE_KEYS, CHOICE_KEYS, read_record, read_runs


def main():
    plot_val_heatmaps(
        read_record(snakemake.input.base, BASE_KEYS),
        read_record(snakemake.input.selection, CHOICE_KEYS),
        read_runs(snakemake.input.runs),
        snakemake.output.png,
        snakemake.output.pdf,
        snakemake.input.style,
    )


run_script(snakemake, main)
