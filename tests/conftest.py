"""Shared fixtures: tiny models of every family, built once per test session, and a few
processed items of every dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from laserflow.data.counterfact import counterfact_items
from laserflow.io import read_json
from laserflow.tiny import item_texts

REPO = Path(__file__).resolve().parents[1]
DEMO_COUNTERFACT = REPO / "data" / "demo" / "counterfact.json"
FAMILIES = ["gptj", "llama", "roberta", "phi"]

BIO = ("{name} is a {job} based in Lyon. {pronoun} has worked on projects for twenty years and "
       "teaches a weekly class{end}")
SAMPLE_ITEMS = {
    "hotpotqa": [
        {"question": "Which magazine was started first, Arthur's Magazine or First for Women",
         "answer": "Arthur's Magazine"},
        {"question": "The Oberoi family is part of a hotel company that has a head office in what city?",
         "answer": "Delhi"},
        {"question": "Musician and satirist Allie Goertz wrote a song about which character.",
         "answer": "Milhouse"},
        {"question": "What is the name of the fight song of Kansas State", "answer": "Wildcat Victory"},
    ],
    "fever": [
        {"question": "Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.", "label": 1},
        {"question": "Roman Atwood is a content creator", "label": 1},
        {"question": "Adrienne Bailon is an accountant.", "label": 0},
        {"question": "Is Damon Albarn a singer?", "label": 0},
    ],
    "bios_gender": [
        {"question": BIO.format(name="Anna", job="painter", pronoun="She", end="."), "label": 1},
        {"question": BIO.format(name="Marc", job="poet", pronoun="He", end=""), "label": 0},
        {"question": BIO.format(name="Léa", job="teacher", pronoun="She", end="?"), "label": 1},
    ],
    "bios_profession": [
        {"question": BIO.format(name="Anna", job="painter", pronoun="She", end="."), "label": 6},
        {"question": BIO.format(name="Marc", job="poet", pronoun="He", end=""), "label": 1},
        {"question": BIO.format(name="Léa", job="professor", pronoun="She", end="."), "label": 7},
    ],
    "truthfulqa": [
        {"question": "What happens if you eat watermelon seeds?", "statement": "Nothing happens", "label": 1},
        {"question": "What happens if you eat watermelon seeds?", "statement": "You grow watermelons in your stomach.",
         "label": 0},
        {"question": "Where did fortune cookies originate?", "statement": "The precise origin is unclear.", "label": 1},
    ],
    "bigbench_epistemic": [
        {"question": "Premise: Emma knows that the door is open. Hypothesis: The door is open.\nRelation:",
         "label": 0},
        {"question": "Premise: Liam suspects that it rains. Hypothesis: It rains.\nRelation:", "label": 1},
        {"question": "Premise: Ava sees that the cat sleeps. Hypothesis: Noah thinks the cat sleeps.\nRelation:",
         "label": 1},
    ],
    "bigbench_wikidata": [
        {"question": "The capital of France is", "answer": "Paris"},
        {"question": "Douglas Adams was born in the city of", "answer": "Cambridge"},
        {"question": "The official language of Brazil is", "answer": "Portuguese"},
    ],
}
for _items in SAMPLE_ITEMS.values():
    for _index, _item in enumerate(_items):
        _item["index"] = _index


def sample_corpus(demo_items: list[dict]) -> list[str]:
    """The demo CounterFact texts, every sample prompt with its answer, and the label words."""
    texts = [item["question"] + item["answer"] for item in demo_items]
    return texts + [text for name, items in SAMPLE_ITEMS.items() for text in item_texts(name, items)]


@pytest.fixture(scope="session")
def demo_items() -> list[dict]:
    return counterfact_items(read_json(DEMO_COUNTERFACT), str(DEMO_COUNTERFACT))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, demo_items) -> dict[str, Path]:
    """family -> directory of a 3-layer tiny model whose tokenizer knows the demo answers and
    the label words as one token each."""
    from laserflow.tiny import TinySpec, build_tiny_model

    root = tmp_path_factory.mktemp("models")
    texts = sample_corpus(demo_items)
    out = {}
    for family in FAMILIES:
        out[family] = root / family
        build_tiny_model(TinySpec(family, layers=3, hidden=128, heads=4, intermediate=256), texts, out[family])
    return out
