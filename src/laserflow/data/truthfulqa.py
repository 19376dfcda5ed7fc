"""TruthfulQA (``truthful_qa``, ``multiple_choice``, validation) as the original ``truthfulqa.py`` builds it.

Each (question, mc2 choice) pair is one true/false item, question-major with the choices in mc2
order; label 1 = true, 0 = false. ``record`` is the question's row number. The prompt (built
later) appends the statement to the question, adding a final "." only where it lacks one.
"""

from __future__ import annotations

from typing import Any

from ..io import LaserflowError
from .rows import field, hub_splits, label_of, where
from .catalog import DATASETS


def truthfulqa_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, statement, label, record}``."""
    (split,) = DATASETS["truthfulqa"].splits
    items = []
    for number, row in enumerate(hub_splits(raw, source, (split,))[split]):
        at = where(source, split, number)
        question = field(row, "question", at)
        choices = field(row, "mc2_targets.choices", at, list)
        labels = field(row, "mc2_targets.labels", at, list)
        if len(choices) != len(labels):
            raise LaserflowError(f"{at}: field 'mc2_targets' has {len(choices)} choices but {len(labels)} labels")
        for choice, label in zip(choices, labels):
            if not isinstance(choice, str):
                raise LaserflowError(f"{at}: field 'mc2_targets.choices' must hold strings, found "
                                     f"{type(choice).__name__}")
            items.append({"index": len(items), "question": question, "statement": choice,
                          "label": label_of(label, {0: 0, 1: 1}, at, "mc2_targets.labels"), "record": number})
    return items
