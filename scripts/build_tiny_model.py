"""Build a tiny random model of a real architecture with a tokenizer trained on the datasets."""

from laserflow.cli import run_script
from laserflow.tiny import build_tiny_model, corpus_texts, tiny_spec


def main():
    sources = dict(zip(snakemake.params.datasets, snakemake.input.corpus))
    build_tiny_model(tiny_spec(snakemake.params.spec), corpus_texts(sources), snakemake.output.model)


run_script(snakemake, main)
