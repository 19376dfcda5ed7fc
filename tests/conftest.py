"""Shared fixtures: tiny models of every family, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from laserflow.data.counterfact import counterfact_items
from laserflow.io import read_json

REPO = Path(__file__).resolve().parents[1]
DEMO_COUNTERFACT = REPO / "data" / "demo" / "counterfact.json"
FAMILIES = ["gptj", "llama", "roberta", "phi"]


@pytest.fixture(scope="session")
def demo_items() -> list[dict]:
    return counterfact_items(read_json(DEMO_COUNTERFACT), str(DEMO_COUNTERFACT))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, demo_items) -> dict[str, Path]:
    """family -> directory of a 3-layer tiny model whose tokenizer knows the demo answers."""
    from laserflow.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("models")
    texts = [item["question"] + item["answer"] for item in demo_items]
    out = {}
    for family in FAMILIES:
        out[family] = root / family
        build_tiny_model(TinySpec(family, layers=3, hidden=128, heads=4, intermediate=256), texts, out[family])
    return out
