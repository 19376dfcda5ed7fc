"""Build a tiny random model of a real architecture with a tokenizer trained on the datasets."""

from laserflow.cli import run_script
from laserflow.config import tiny_spec
from laserflow.tiny import build_tiny_model, corpus_texts


def main():
    build_tiny_model(tiny_spec(snakemake.params.spec), corpus_texts(snakemake.input.corpus), snakemake.output.model)


run_script(snakemake, main)
