"""Validation accuracy of the greedy composite against the number of layers composed, for one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.figures import plot_composition
from laserflow.records import COMPOSE_KEYS, read_record, read_steps


def main():
    compose = read_record(snakemake.input.compose, COMPOSE_KEYS)
    plot_composition(compose, read_steps(snakemake.input.steps), snakemake.output.png, snakemake.output.pdf,
                     snakemake.input.style)


run_script(snakemake, main)
