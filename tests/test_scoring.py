"""Scoring per family: batched equals one-at-a-time, and the protocol details."""

from __future__ import annotations

import math

import pytest
import torch

from laserflow.io import LaserflowError
from laserflow.models import load_model
from laserflow.scoring import ScoringOptions, _masked_prompt, answer_length, score_items


@pytest.mark.parametrize("family", ["gptj", "llama", "roberta", "phi"])
def test_batched_scoring_equals_one_item_at_a_time(tiny_models, demo_items, family):
    model, tokenizer, detected = load_model(tiny_models[family])
    items = demo_items[:24]
    batched = score_items(model, tokenizer, detected, items, ScoringOptions(batch_size=8, show_progress=False))
    single = score_items(model, tokenizer, detected, items, ScoringOptions(batch_size=1, show_progress=False))
    assert [r["index"] for r in batched] == list(range(24))
    assert [r["correct"] for r in batched] == [r["correct"] for r in single]
    assert [r["prediction"] for r in batched] == [r["prediction"] for r in single]
    for left, right in zip(batched, single):
        assert left["answer_len"] == right["answer_len"] == 1
        assert left["answer_logprob"] == pytest.approx(right["answer_logprob"], abs=1e-4)


def test_next_token_scoring_is_the_reference_computation(tiny_models, demo_items):
    model, tokenizer, family = load_model(tiny_models["gptj"])
    item = demo_items[5]
    (record,) = score_items(model, tokenizer, family, [item], ScoringOptions(show_progress=False))
    with torch.inference_mode():
        ids = tokenizer(item["question"], return_tensors="pt").input_ids
        logprobs = torch.log_softmax(model(ids).logits[0, -1], dim=-1)
    (gold,) = tokenizer(item["answer"]).input_ids
    assert record["answer_logprob"] == pytest.approx(logprobs[gold].item(), abs=1e-5)
    top1 = tokenizer.decode([int(logprobs.argmax())])
    assert record["prediction"] == top1
    assert record["correct"] == (top1.lower().strip() == item["answer"].lower().strip())


def test_masked_prompt_adds_a_space_unless_the_question_ends_with_one():
    assert _masked_prompt("The capital of France is") == "The capital of France is <mask>."
    assert _masked_prompt("Thierry Henry plays ") == "Thierry Henry plays <mask>."


def test_generation_match_full_text_counts_an_answer_inside_the_question(tiny_models):
    model, tokenizer, family = load_model(tiny_models["llama"])
    # Case 51 of the demo data: the answer "Toyota" occurs in the question itself.
    item = {"index": 0, "question": "Toyota Motor Corporation is headquartered in", "answer": " Toyota"}
    full = score_items(model, tokenizer, family, [item], ScoringOptions(show_progress=False))[0]
    continuation = score_items(model, tokenizer, family, [item],
                               ScoringOptions(generation_match="continuation", show_progress=False))[0]
    assert full["correct"] is True
    assert continuation["correct"] == ("toyota" in continuation["prediction"].lower())
    assert full["answer_logprob"] == continuation["answer_logprob"]
    assert math.isfinite(full["answer_logprob"]) and full["answer_len"] == 1


def test_answer_length_is_the_shortest_decoding_suffix(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["llama"])
    ids = tokenizer("The mother tongue of Danielle Darrieux is French").input_ids
    assert answer_length(tokenizer, ids, " French") == 1
    assert answer_length(tokenizer, ids, " is French") == 2
    with pytest.raises(LaserflowError, match="is not a token suffix"):
        answer_length(tokenizer, ids, " German")


def test_masked_scoring_rejects_multi_token_answers(tiny_models):
    model, tokenizer, family = load_model(tiny_models["roberta"])
    item = {"index": 7, "question": "The capital of France is", "answer": " Parisxyzzy"}
    with pytest.raises(LaserflowError) as err:
        score_items(model, tokenizer, family, [item], ScoringOptions(show_progress=False))
    assert str(err.value).startswith("item 7: answer ' Parisxyzzy' is ")
    assert str(err.value).endswith("tokens; the masked-LM protocol needs one")
