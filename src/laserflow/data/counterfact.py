"""CounterFact (ROME's counterfact.json) as the original ``scripts/get_counterfact.py`` builds it.

Per record, three items in this order: the rewrite prompt formatted with the subject, then each
of the two paraphrase prompts; every item's gold answer is ``" " + target_true.str``. The
question is not stripped (the original's commit "Now not removing whitespace").
"""

from __future__ import annotations

from ..io import LaserflowError
from .rows import field


def counterfact_items(records: list, source: str) -> list[dict]:
    """Items from the raw ROME records; a malformed record stops with its number and field."""
    if not isinstance(records, list):
        raise LaserflowError(f"{source}: expected a JSON list of CounterFact records")
    items = []
    for number, record in enumerate(records):
        at = f"{source}: record {number}"
        prompt = field(record, "requested_rewrite.prompt", at)
        subject = field(record, "requested_rewrite.subject", at)
        answer = field(record, "requested_rewrite.target_true.str", at)
        paraphrases = field(record, "paraphrase_prompts", at, None)
        if not isinstance(paraphrases, list) or len(paraphrases) != 2:
            raise LaserflowError(f"{at}: field 'paraphrase_prompts' must hold exactly 2 prompts")
        if not all(isinstance(paraphrase, str) for paraphrase in paraphrases):
            raise LaserflowError(f"{at}: field 'paraphrase_prompts' must hold strings")
        # The original fills the prompt with str.format; with one '{}' and no other brace that is
        # this replacement, and no other format field ('{0.__class__}') can run.
        if prompt.count("{}") != 1 or prompt.count("{") != 1 or prompt.count("}") != 1:
            raise LaserflowError(f"{at}: field 'requested_rewrite.prompt' needs exactly one '{{}}' and no other brace")
        for question in (prompt.replace("{}", subject), *paraphrases):
            items.append({"index": len(items), "question": question, "answer": " " + answer, "record": number})
    return items
