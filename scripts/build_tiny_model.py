"""Build a tiny random model of a real architecture with a tokenizer trained on the datasets, and
its manifest."""

from laserflow.cli import run_script
from laserflow.manifest import write_manifest
from laserflow.tiny import build_tiny_model, corpus_texts, tiny_spec


def main():
    sources = dict(zip(snakemake.params.datasets, snakemake.input.corpus))
    build_tiny_model(tiny_spec(snakemake.params.spec), corpus_texts(sources), snakemake.output.model)
    write_manifest(snakemake.output.model, snakemake.output.manifest)


run_script(snakemake, main)
