"""HotpotQA (``hotpot_qa``, ``fullwiki``) as the original ``src/dataset_utils/hotpot.py`` builds it.

The first ``len(validation)`` rows of the train split (the counter runs over rows, so the filter
may keep fewer), then every validation row. A row is kept when its stripped answer is at most 15
ids long in the Llama-2 tokenizer, BOS included ("We use the LLAMA tokenizer for consistency",
whatever the evaluated model). Question and answer are stripped.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ..io import LaserflowError
from .rows import field, hub_splits, where

MAX_ANSWER_TOKENS = 15  # BOS included


def answer_token_counter(model_dir: str | os.PathLike) -> Callable[[str], int]:
    """``len(tokenizer(answer).input_ids)`` with the tokenizer of a local model directory."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0]
        raise LaserflowError(f"{model_dir}: no usable tokenizer for the hotpotqa answer filter ({reason})") from None
    return lambda answer: len(tokenizer(answer).input_ids)


def hotpotqa_items(raw: Any, source: str, count_tokens: Callable[[str], int]) -> list[dict]:
    """Items ``{index, question, answer, split}``: train-derived first, then validation."""
    splits = hub_splits(raw, source, ("train", "validation"))
    rows = [("train", number, row) for number, row in enumerate(splits["train"][:len(splits["validation"])])]
    rows += [("validation", number, row) for number, row in enumerate(splits["validation"])]
    items = []
    for split, number, row in rows:
        at = where(source, split, number)
        question = field(row, "question", at).strip()
        answer = field(row, "answer", at).strip()
        if count_tokens(answer) <= MAX_ANSWER_TOKENS:
            items.append({"index": len(items), "question": question, "answer": answer, "split": split})
    return items
