"""Dataset preparation: each raw source becomes canonical JSON Lines (see ``catalog``).

The helpers here read the raw Hugging Face files (``{"source": {...}, "splits": {split: [row, ...]}}``)
the same way for every dataset, so that a malformed row always stops with one line naming the
file, the split, the row number (0-based, as in the source split) and the field.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

from ..io import LaserflowError, read_json, write_jsonl

log = logging.getLogger(__name__)

_KINDS = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


def check_size(dataset: str, found: int, expected: int | None, on_mismatch: str = "error") -> None:
    """Stop (or warn, if configured) when a processed source does not have its known size."""
    if expected is None or found == expected:
        return
    message = f"dataset {dataset}: expected {expected} items, found {found}"
    if on_mismatch == "warn":
        log.warning("%s", message)
        return
    raise LaserflowError(message + " (set size_mismatch: warn to continue anyway)")


def hub_splits(raw: Any, source: str, names: Sequence[str]) -> dict[str, list]:
    """The named splits of a raw Hugging Face file, each a list of rows, in ``names`` order."""
    if not isinstance(raw, dict) or not isinstance(raw.get("splits"), dict):
        raise LaserflowError(f"{source}: expected a JSON object with a 'splits' object of split -> rows")
    splits = {}
    for name in names:
        if name not in raw["splits"]:
            raise LaserflowError(f"{source}: missing split '{name}' (found: {', '.join(raw['splits']) or 'none'})")
        if not isinstance(raw["splits"][name], list):
            raise LaserflowError(f"{source}: split {name} must be a list of rows")
        splits[name] = raw["splits"][name]
    return splits


def where(source: str, split: str, number: int) -> str:
    """How messages locate a row: ``file: split S row N``."""
    return f"{source}: split {split} row {number}"


def field(row: Any, path: str, at: str, kind: type | None = str) -> Any:
    """``row[path]`` (dots walk into objects), of ``kind`` unless None; ``at`` locates the row."""
    value = row
    for key in path.split("."):
        if not isinstance(value, dict):
            raise LaserflowError(f"{at}: expected an object with field '{path}'")
        if key not in value:
            raise LaserflowError(f"{at}: missing field '{path}'")
        value = value[key]
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise LaserflowError(f"{at}: field '{path}' must be {_KINDS[kind]}, found {type(value).__name__}")
    return value


def label_of(value: Any, labels: dict, at: str, name: str) -> Any:
    """``labels[value]`` for an int or string ``value``; anything else is an unknown label."""
    if type(value) not in (int, str) or value not in labels:
        raise LaserflowError(f"{at}: unknown label {value!r} in field '{name}'")
    return labels[value]


def build_items(name: str, raw: Any, source: str, answer_tokenizer: str | os.PathLike | None = None) -> list[dict]:
    """The processed items of the catalog dataset ``name`` from its parsed raw file."""
    from . import bigbench, bios, counterfact, fever, hotpotqa, truthfulqa
    from .catalog import dataset_info

    dataset_info(name)
    if name == "hotpotqa":
        if answer_tokenizer is None:
            raise LaserflowError("dataset hotpotqa: answer_tokenizer is not set (a model directory with the "
                                 "Llama-2 tokenizer that filters answers by length)")
        return hotpotqa.hotpotqa_items(raw, source, hotpotqa.answer_token_counter(answer_tokenizer))
    builders = {
        "counterfact": counterfact.counterfact_items,
        "fever": fever.fever_items,
        "bios_gender": bios.bios_gender_items,
        "bios_profession": bios.bios_profession_items,
        "truthfulqa": truthfulqa.truthfulqa_items,
        "bigbench_epistemic": bigbench.epistemic_items,
        "bigbench_wikidata": bigbench.wikidata_items,
    }
    return builders[name](raw, source)


def prepare_dataset(name: str, raw_path: str | os.PathLike, out_path: str | os.PathLike,
                    expected_items: int | None = None, size_mismatch: str = "error",
                    answer_tokenizer: str | os.PathLike | None = None) -> int:
    """Write the items of a raw source as JSON Lines (atomically); returns the item count."""
    items = build_items(name, read_json(raw_path), str(raw_path), answer_tokenizer)
    check_size(name, len(items), expected_items, size_mismatch)
    write_jsonl(out_path, items)
    log.info("%s: %d items from %s", name, len(items), raw_path)
    return len(items)


def raw_items(name: str, raw_path: str | os.PathLike) -> list[dict]:
    """A raw source's items before any tokenizer filter (HotPotQA keeps every answer): the text
    the demo's tiny tokenizers are trained on, which HotPotQA's own filter then needs."""
    from . import hotpotqa

    raw = read_json(raw_path)
    if name == "hotpotqa":
        return hotpotqa.hotpotqa_items(raw, str(raw_path), lambda answer: 0)
    return build_items(name, raw, str(raw_path))
