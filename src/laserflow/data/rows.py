"""Reading raw source rows the same way for every dataset, so that a malformed row always stops
with one line naming the file, the split, the row number (0-based, as in the source split) and the
field. A raw Hugging Face file is ``{"source": {...}, "splits": {split: [row, ...]}}``.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..io import LaserflowError, lookup

_KINDS = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


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
    if not isinstance(row, dict):
        raise LaserflowError(f"{at}: expected an object with field '{path}'")
    try:
        value = lookup(row, path)
    except KeyError:
        raise LaserflowError(f"{at}: missing field '{path}'") from None
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise LaserflowError(f"{at}: field '{path}' must be {_KINDS[kind]}, found {type(value).__name__}")
    return value


def label_of(value: Any, labels: dict, at: str, name: str) -> Any:
    """``labels[value]`` for an int or string ``value``; anything else is an unknown label."""
    if type(value) not in (int, str) or value not in labels:
        raise LaserflowError(f"{at}: unknown label {value!r} in field '{name}'")
    return labels[value]
