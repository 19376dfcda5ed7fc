"""Prompts and scoring requests per (dataset, model family), as the original scripts build them.

Quirks kept by default (each has a corrected variant behind a switch, recorded in the output):
- TruthfulQA joins the statement's "." and "Is this statement…" with no space
  (``truthfulqa_prompt: original``; ``corrected`` adds the space).
- RoBERTa's Bios prompts keep only the last 50 RoBERTa tokens of the biography; GPT-J and Llama
  see all of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .data.catalog import DatasetInfo
from .families import Family
from .settings import ScoringOptions

MASK = "<mask>"
BIOS_TOKENS = 50  # RoBERTa keeps the last 50 tokens of a biography


@dataclass(frozen=True)
class Request:
    """What one item asks of the model.

    method: ``next_token`` (top-1 after the prompt equals the answer), ``generation`` (greedy,
    containment), ``mask_token`` (top-1 at the one mask), ``mask_fill`` (argmax at masks appended
    to the prompt, containment), ``labels`` (log-probs of the one-token label words at the last position
    or the mask), ``sequences`` (summed log-prob of prompt + " " + each choice; RoBERTa masks the
    choice's tokens).
    """

    method: str
    prompt: str
    continuation: str = ""  # text after the prompt whose log-prob is the item's loss
    answer: str = ""  # gold string of next_token / generation / mask_token / mask_fill
    choices: tuple[str, ...] = ()  # label words (labels) or choice texts (sequences)
    gold: int = -1  # index of the gold choice
    strict: bool = False  # two labels: correct only when the gold one is strictly more likely


def _period_space(text: str) -> str:
    """The original's joint between a text and the next sentence."""
    return " " if text.endswith((".", "?")) else ". "


def _last_tokens(tokenizer, text: str, count: int) -> str:
    return tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids[-count:]).strip()


def _fever(item, masked, tokenizer, options) -> str:
    claim = item["question"].strip()
    prompt = "Consider the following claim: " + claim + _period_space(claim) + "Is this claim true or false. The claim is"
    return prompt + " " + MASK if masked else prompt


def _bios_text(item, masked, tokenizer) -> str:
    text = item["question"].strip()
    text = _last_tokens(tokenizer, text, BIOS_TOKENS) if masked else text
    return "Consider the following text: " + text + _period_space(text)


def _bios_gender(item, masked, tokenizer, options) -> str:
    ending = "This person is <mask>." if masked else "The gender of this person is"
    return _bios_text(item, masked, tokenizer) + "Is the person in this text a male or female? " + ending


def _bios_profession(item, masked, tokenizer, options) -> str:
    ending = ("The profession of the person in the text is called <mask>." if masked
              else "What is the profession of the person in this text? The profession of this person is")
    return _bios_text(item, masked, tokenizer) + ending


def _truthfulqa(item, masked, tokenizer, options) -> str:
    prompt = item["question"] + " " + item["statement"]
    if not prompt.endswith("."):
        prompt += "."
    prompt += (" " if options.truthfulqa_prompt == "corrected" else "") + "Is this statement true or false? This statement is"
    return prompt + " " + MASK if masked else prompt


def _hotpotqa(item, masked, tokenizer, options) -> str:
    question = item["question"]
    return question + (" The answer is" if question.endswith(("?", ".")) else "? The answer is")


def _as_is(item, masked, tokenizer, options) -> str:
    return item["question"]


PROMPTS = {
    "counterfact": _as_is,
    "hotpotqa": _hotpotqa,
    "fever": _fever,
    "bios_gender": _bios_gender,
    "bios_profession": _bios_profession,
    "truthfulqa": _truthfulqa,
    "bigbench_epistemic": _as_is,
    "bigbench_wikidata": _as_is,
}


def masked_fact_prompt(question: str) -> str:
    """RoBERTa CounterFact: a space before the mask unless the question ends with one."""
    return f"{question}{MASK}." if question.endswith(" ") else f"{question} {MASK}."


def _single_tokens(tokenizer, family: Family, words: tuple[str, ...]) -> bool:
    return all(len(tokenizer(family.label_prefix + word, add_special_tokens=False).input_ids) == 1 for word in words)


def build_request(info: DatasetInfo, family: Family, tokenizer, item: dict, options: ScoringOptions) -> Request:
    """The scoring request of one processed item."""
    masked = family.scoring == "masked"
    prompt = PROMPTS[info.name](item, masked, tokenizer, options)
    if info.task == "fact":
        if masked:
            return Request("mask_token", masked_fact_prompt(prompt), answer=item["answer"])
        method = "generation" if family.scoring == "generation" else "next_token"
        return Request(method, prompt, continuation=item["answer"], answer=item["answer"])
    if info.task == "open":
        method = "mask_fill" if masked else "generation"
        return Request(method, prompt, continuation=" " + item["answer"], answer=item["answer"])
    label = item["label"]
    strict = info.task == "compare"
    # BIG-bench choices: one token each -> compare at the last position; otherwise (and always
    # for RoBERTa, as its original script does) the summed log-prob of prompt + " " + choice.
    # Other label words must be one token each (the original asserts it; scoring checks).
    if info.name.startswith("bigbench") and (masked or not _single_tokens(tokenizer, family, info.choices)):
        return Request("sequences", prompt, choices=info.choices, gold=label)
    return Request("labels", prompt, choices=info.choices, gold=label, strict=strict)
