"""Table 1: base vs LASER test accuracy and log-loss with the chosen (τ, ℓ, ρ)."""

from laserflow.cli import run_script
from laserflow.io import read_json
from laserflow.report import write_table1


def main():
    write_table1([read_json(path) for path in snakemake.input.selections], snakemake.output.csv, snakemake.output.md)


run_script(snakemake, main)
