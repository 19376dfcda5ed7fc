"""The paper's per-layer sweep figure of one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.figures import plot_sweep
from laserflow.records import BASE_KEYS, read_record, read_runs


def main():
    base = read_record(snakemake.input.base, BASE_KEYS)
    plot_sweep(base, read_runs(snakemake.input.runs), snakemake.output.png, snakemake.output.pdf, snakemake.input.style)


run_script(snakemake, main)
