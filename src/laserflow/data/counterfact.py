"""CounterFact (ROME's counterfact.json) as the original ``scripts/get_counterfact.py`` builds it.

Per record, three items in this order: the rewrite prompt formatted with the subject, then each
of the two paraphrase prompts; every item's gold answer is ``" " + target_true.str``. The
question is not stripped (the original's commit "Now not removing whitespace").
"""

from __future__ import annotations

import logging

from ..io import LaserflowError, read_json, write_jsonl
from . import check_size

log = logging.getLogger(__name__)

EXPECTED_ITEMS = 65_757  # 21,919 records × 3


def _field(record: dict, path: str, source: str, number: int):
    value = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise LaserflowError(f"{source}: record {number}: missing field '{path}'")
        value = value[key]
    return value


def counterfact_items(records: list, source: str) -> list[dict]:
    """Items from the raw ROME records; a malformed record stops with its number and field."""
    if not isinstance(records, list):
        raise LaserflowError(f"{source}: expected a JSON list of CounterFact records")
    items = []
    for number, record in enumerate(records):
        prompt = _field(record, "requested_rewrite.prompt", source, number)
        subject = _field(record, "requested_rewrite.subject", source, number)
        answer = _field(record, "requested_rewrite.target_true.str", source, number)
        paraphrases = _field(record, "paraphrase_prompts", source, number)
        if not isinstance(paraphrases, list) or len(paraphrases) != 2:
            raise LaserflowError(f"{source}: record {number}: field 'paraphrase_prompts' must hold exactly 2 prompts")
        if prompt.count("{}") != 1:
            raise LaserflowError(f"{source}: record {number}: field 'requested_rewrite.prompt' needs one '{{}}'")
        for question in (prompt.format(subject), *paraphrases):
            items.append({"index": len(items), "question": question, "answer": " " + answer, "record": number})
    return items


def prepare_counterfact(raw_path: str, out_path: str, expected_items: int | None = None,
                        size_mismatch: str = "error") -> int:
    """Write the processed items of a raw counterfact.json as JSON Lines; returns the item count."""
    items = counterfact_items(read_json(raw_path), source=raw_path)
    check_size("counterfact", len(items), expected_items, size_mismatch)
    write_jsonl(out_path, items)
    log.info("counterfact: %d items from %s", len(items), raw_path)
    return len(items)
