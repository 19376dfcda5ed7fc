"""Score the configuration a search chose (on its validation part) on every item."""

from laserflow.cli import run_script
from laserflow.io import read_json
from laserflow.paths import edits_of, svd_files
from laserflow.settings import EvaluationPaths, job_values
from laserflow.worker import run_job


def main():
    chosen = read_json(snakemake.input.selection)["chosen"]
    needed = svd_files(snakemake.wildcards.model, edits_of(chosen))
    paths = EvaluationPaths.from_job(snakemake.input, snakemake.output.summary, snakemake.output.records,
                                     svd=[path for path in snakemake.input.svd if path in needed])
    job = job_values(snakemake.params.settings, [(chosen, paths)])
    run_job("evaluate", job, snakemake.threads, snakemake.log[0])


run_script(snakemake, main)
