"""Shared fixtures: the repository, tiny models of every family (built once per test session), a
few processed items of every dataset, and a Snakemake runner for the workflow tests.

``tests/unit`` holds the quick tests (``python -m pytest -q tests/unit``); ``tests/workflow`` runs
Snakemake end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from laserflow.data.counterfact import counterfact_items
from laserflow.io import read_json
from laserflow.tiny import item_texts

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ["gptj", "llama", "roberta", "phi"]
# Today's architectures (laserflow.tiny): three new families and three more models of the llama family.
NEW_ARCHITECTURES = ["gpt2", "gpt_neox", "phi3", "qwen2", "gemma", "gemma2"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_counterfact() -> Path:
    """ROME's counterfact.json schema: the demo's 120 records."""
    return REPO / "data" / "demo" / "counterfact.json"


@pytest.fixture(scope="session")
def sample_items() -> dict[str, list[dict]]:
    """A few processed items of every dataset but CounterFact (tests/data/sample_items.json)."""
    return json.loads((REPO / "tests" / "data" / "sample_items.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo_items(demo_counterfact) -> list[dict]:
    return counterfact_items(read_json(demo_counterfact), str(demo_counterfact))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, demo_items, sample_items) -> dict[str, Path]:
    """family (or architecture) -> directory of a 3-layer tiny model whose tokenizer knows the
    demo answers and the label words as one token each."""
    from laserflow.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("models")
    texts = [item["question"] + item["answer"] for item in demo_items]
    texts += [text for name, items in sample_items.items() for text in item_texts(name, items)]
    out = {}
    for family in FAMILIES + NEW_ARCHITECTURES:
        out[family] = root / family
        build_tiny_model(TinySpec(family, layers=3, hidden=128, heads=4, intermediate=256), texts, out[family])
    return out


@pytest.fixture(scope="session")
def snakemake():
    """``snakemake(workdir, *args, check=True)``: the workflow on ``workdir``'s config.yaml with
    two cores; returns the finished process (stdout and stderr together in ``.output``)."""

    def run(workdir, *args, check=True, env=None, timeout=900, snakefile=REPO / "Snakefile"):
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--configfile", "config.yaml",
             "--cores", "2", *args],
            cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env,
        )
        result.output = result.stdout + result.stderr
        if check:
            assert result.returncode == 0, result.output[-3000:]
        return result

    return run


def job_counts(output: str) -> dict[str, int]:
    """A dry run's 'Job stats' table as {rule: count}."""
    stats = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}


@pytest.fixture(scope="session")
def planned_jobs():
    """``planned_jobs(output)``: a dry run's job counts per rule."""
    return job_counts
