"""The per-layer sweep figure of one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.io import read_json
from laserflow.report import plot_sweep


def main():
    runs = [read_json(path) for path in snakemake.input.runs]
    plot_sweep(read_json(snakemake.input.base), runs, snakemake.output.png, snakemake.output.pdf, snakemake.input.style)


run_script(snakemake, main)
