"""sha256 of a model's weight, config and tokenizer files, recorded once per model."""

from laserflow.cli import run_script
from laserflow.models import write_manifest


def main():
    write_manifest(snakemake.input.model, snakemake.output.manifest)


run_script(snakemake, main)
