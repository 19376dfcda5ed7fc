"""Snapshot a hub model (pinned revision) into resources/ once, before any sweep job runs, and write
its manifest."""

from laserflow.cli import run_script
from laserflow.manifest import write_manifest
from laserflow.models import snapshot


def main():
    source = snakemake.params.source
    snapshot(source["hub"], source["revision"], snakemake.output.model)
    write_manifest(snakemake.output.model, snakemake.output.manifest)


run_script(snakemake, main)
