"""sha256 of a local (`path:`) model's weight, config and tokenizer files: its manifest."""

from laserflow.cli import run_script
from laserflow.manifest import write_manifest


def main():
    write_manifest(snakemake.input.model, snakemake.output.manifest)


run_script(snakemake, main)
