"""Snapshot a hub model (pinned revision) into resources/ once, before any sweep job runs."""

from laserflow.cli import run_script
from laserflow.models import snapshot


def main():
    spec = snakemake.params.spec
    snapshot(spec["hub"], spec["revision"], snakemake.output.model)


run_script(snakemake, main)
