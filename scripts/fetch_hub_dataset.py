"""Fetch a dataset's splits from the Hugging Face hub at a pinned revision."""

from dataclasses import replace

from laserflow.cli import run_script
from laserflow.data.catalog import dataset_info
from laserflow.data.hub import fetch_hub_dataset


def main():
    spec = snakemake.params.spec
    info = dataset_info(snakemake.wildcards.dataset)
    # The config may name a mirror (e.g. the parquet copy hotpotqa/hotpot_qa) or another config.
    info = replace(info, hub=spec["hub"], hub_config=spec.get("hub_config", info.hub_config))
    fetch_hub_dataset(info, snakemake.output.raw, spec["revision"])


run_script(snakemake, main)
