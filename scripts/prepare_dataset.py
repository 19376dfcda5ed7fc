"""A dataset's raw source -> canonical JSON Lines, in the protocol's order."""

from laserflow.cli import run_script
from laserflow.data import prepare_dataset


def main():
    spec = snakemake.params.spec
    prepare_dataset(
        snakemake.wildcards.dataset,
        snakemake.input.raw,
        snakemake.output.dataset,
        spec.get("expected_items"),
        spec.get("size_mismatch", "error"),
        snakemake.input.tokenizer or None,
    )


run_script(snakemake, main)
