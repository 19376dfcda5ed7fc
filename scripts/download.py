"""Download a dataset's raw source (URL and sha256 from config)."""

from laserflow.cli import run_script
from laserflow.data.fetch import download


def main():
    spec = snakemake.params.spec
    download(spec["url"], snakemake.output.raw, spec.get("sha256"))


run_script(snakemake, main)
