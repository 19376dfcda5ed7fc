"""FEVER (``EleutherAI/fever``, ``v1.0``) as the original ``src/dataset_utils/fever.py`` builds it.

Splits paper_dev then paper_test; no claim may appear in both. Per split, rows are grouped by
claim in first-occurrence order and a claim is kept only when all its rows agree on the label.
Labels: 1 = true (SUPPORTS), 0 = false (REFUTES); the ints or those two strings are accepted,
anything else (e.g. NOT ENOUGH INFO) stops. The claim is kept as it is; prompts strip it.
"""

from __future__ import annotations

from typing import Any

from ..io import LaserflowError
from .rows import field, hub_splits, label_of, where
from .catalog import DATASETS

LABELS = {0: 0, 1: 1, "REFUTES": 0, "SUPPORTS": 1}


def fever_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, label, split}`` of the claims with one consistent label."""
    first_seen: dict[str, tuple[str, int]] = {}
    labels: dict[str, dict[str, set]] = {}
    for split, rows in hub_splits(raw, source, DATASETS["fever"].splits).items():
        labels[split] = {}
        for number, row in enumerate(rows):
            at = where(source, split, number)
            claim = field(row, "claim", at)
            label = label_of(field(row, "label", at, None), LABELS, at, "label")
            seen_split, seen_row = first_seen.setdefault(claim, (split, number))
            if seen_split != split:
                raise LaserflowError(f"{at}: the claim in field 'claim' also appears in split {seen_split} "
                                     f"row {seen_row}")
            labels[split].setdefault(claim, set()).add(label)
    items = []
    for split, claims in labels.items():
        for claim, found in claims.items():
            if len(found) == 1:
                items.append({"index": len(items), "question": claim, "label": found.pop(), "split": split})
    return items
