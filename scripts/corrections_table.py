"""Items LASER corrects, with the base, LASER and bottom-only predictions, for one (model, dataset)."""

from laserflow.cli import run_script
from laserflow.io import read_jsonl
from laserflow.records import ANALYSIS_KEYS, read_record
from laserflow.report import write_corrections_table


def main():
    write_corrections_table(read_record(snakemake.input.analysis, ANALYSIS_KEYS), read_jsonl(snakemake.input.predictions),
                            snakemake.output.csv, snakemake.output.md, snakemake.output.tex, snakemake.params.examples)


run_script(snakemake, main)
