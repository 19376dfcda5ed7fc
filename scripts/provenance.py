"""Device, dtype and software versions each (model, dataset) was evaluated with."""

from laserflow.cli import run_script
from laserflow.records import read_provenances
from laserflow.report import write_provenance


def main():
    write_provenance(read_provenances(snakemake.input.bases), snakemake.output.csv)


run_script(snakemake, main)
