"""CounterFact raw JSON -> canonical JSON Lines."""

from laserflow.cli import run_script
from laserflow.data.counterfact import prepare_counterfact


def main():
    spec = snakemake.params.spec
    prepare_counterfact(
        snakemake.input.raw,
        snakemake.output.dataset,
        spec.get("expected_items"),
        spec.get("size_mismatch", "error"),
    )


run_script(snakemake, main)
