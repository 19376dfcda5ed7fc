"""Scoring per family: batched equals one-at-a-time, and the protocol details."""

from __future__ import annotations

import math

import pytest
import torch

from laserflow.io import LaserflowError
from laserflow.models import load_model, model_activation
from laserflow.prompts import masked_fact_prompt
from laserflow.data.catalog import DATASETS
from laserflow.forward import (Row, WeightStates, answer_length, generation_batch_size, pack, packed_attention,
                               sequences_in_memory, single)
from laserflow.scoring import describe_scoring, score_items, score_states
from laserflow.settings import ScoringOptions


CPU = torch.device("cpu")


@pytest.mark.parametrize("family", ["gptj", "llama", "roberta", "phi", "gpt2", "gpt_neox", "phi3", "qwen2", "gemma",
                                    "gemma2"])
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


@pytest.mark.parametrize("family, unfused", [("gptj", "gelu_new"), ("phi", "gelu_new"), ("llama", "silu")])
def test_fused_gelu_scores_as_transformers_unfused_gelu(tiny_models, demo_items, family, unfused):
    fused, tokenizer, detected = load_model(tiny_models[family])
    reference, _, _ = load_model(tiny_models[family], fused_gelu=False)
    assert model_activation(reference) == unfused
    assert model_activation(fused) == ("gelu_pytorch_tanh" if unfused == "gelu_new" else unfused)
    options = ScoringOptions(batch_size=8, show_progress=False)
    left = score_items(fused, tokenizer, detected, demo_items[:24], options)
    right = score_items(reference, tokenizer, detected, demo_items[:24], options)
    assert [r["prediction"] for r in left] == [r["prediction"] for r in right]
    for a, b in zip(left, right):
        assert a["answer_logprob"] == pytest.approx(b["answer_logprob"], abs=1e-5)


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
    assert masked_fact_prompt("The capital of France is") == "The capital of France is <mask>."
    assert masked_fact_prompt("Thierry Henry plays ") == "Thierry Henry plays <mask>."


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


@pytest.mark.parametrize("family", ["gptj", "llama", "roberta", "phi"])
@pytest.mark.parametrize("dataset", sorted(set(DATASETS) - {"counterfact"}))
def test_every_dataset_batched_equals_one_item_at_a_time(tiny_models, family, dataset, sample_items):
    model, tokenizer, detected = load_model(tiny_models[family])
    items = sample_items[dataset]
    options = dict(show_progress=False, max_new_tokens=4)
    batched = score_items(model, tokenizer, detected, items, ScoringOptions(batch_size=3, **options), dataset)
    single = score_items(model, tokenizer, detected, items, ScoringOptions(batch_size=1, **options), dataset)
    assert [r["index"] for r in batched] == [item["index"] for item in items]
    for left, right in zip(batched, single):
        assert (left["correct"], left["prediction"], left["answer_len"]) == \
            (right["correct"], right["prediction"], right["answer_len"])
        assert left["answer_logprob"] == pytest.approx(right["answer_logprob"], abs=1e-4)
        assert left.get("choice_logprobs") == pytest.approx(right.get("choice_logprobs"), abs=1e-4)


def _last_logprobs(model, tokenizer, text: str) -> torch.Tensor:
    with torch.inference_mode():
        ids = tokenizer(text, return_tensors="pt").input_ids
        return torch.log_softmax(model(ids).logits[0, -1], dim=-1)


@pytest.mark.parametrize("family, words", [("gptj", (" false", " true")), ("llama", ("false", "true"))])
def test_fever_compares_the_label_tokens_at_the_last_position(tiny_models, family, words, sample_items):
    model, tokenizer, detected = load_model(tiny_models[family])
    items = sample_items["fever"]
    records = score_items(model, tokenizer, detected, items, ScoringOptions(show_progress=False), "fever")
    for item, record in zip(items, records):
        prompt = "Consider the following claim: " + item["question"].strip()
        prompt += (" " if item["question"].endswith(".") or item["question"].endswith("?") else ". ")
        logprobs = _last_logprobs(model, tokenizer, prompt + "Is this claim true or false. The claim is")
        ids = [tokenizer(word, add_special_tokens=False).input_ids for word in words]
        assert all(len(token) == 1 for token in ids)
        reference = [logprobs[token[0]].item() for token in ids]
        assert record["choice_logprobs"] == pytest.approx(reference, abs=1e-5)
        assert record["answer_logprob"] == pytest.approx(reference[item["label"]], abs=1e-5)
        assert record["answer_len"] == 1
        assert record["correct"] == (reference[item["label"]] > reference[1 - item["label"]])


def test_multi_token_choices_sum_the_choice_log_probs(tiny_models, sample_items):
    """GPT-J's byte-level tokens split "non-entailment": each choice is scored as prompt + " " + choice."""
    model, tokenizer, detected = load_model(tiny_models["gptj"])
    items = sample_items["bigbench_epistemic"]
    records = score_items(model, tokenizer, detected, items, ScoringOptions(show_progress=False), "bigbench_epistemic")
    assert describe_scoring(ScoringOptions(), detected, tokenizer, "bigbench_epistemic", items[0],
                            CPU) == {"method": "sequences", "batch_size": 64, "shared_prompt": True}
    for item, record in zip(items, records):
        sums, lengths = [], []
        for choice in ("entailment", "non-entailment"):
            ids = tokenizer(item["question"] + " " + choice).input_ids
            n = answer_length(tokenizer, ids, " " + choice)
            with torch.inference_mode():
                logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
            sums.append(sum(logprobs[p - 1, ids[p]].item() for p in range(len(ids) - n, len(ids))))
            lengths.append(n)
        assert lengths[1] > 1
        assert record["choice_logprobs"] == pytest.approx(sums, abs=1e-4)
        assert record["answer_len"] == lengths[item["label"]]
        assert record["correct"] == (max(range(2), key=lambda i: (sums[i], -i)) == item["label"])


CAUSAL = ["gptj", "llama", "phi", "gpt2", "gpt_neox", "phi3", "qwen2", "gemma", "gemma2"]


@pytest.mark.parametrize("family", CAUSAL)
def test_a_shared_prompt_scores_each_choice_as_its_own_row_does(tiny_models, sample_items, family):
    """Choices packed after one copy of the prompt read what one row per choice reads."""
    model, tokenizer, detected = load_model(tiny_models[family])
    items = sample_items["bigbench_epistemic"] * 3  # several packed sequences of different lengths per batch
    items = [dict(item, index=index, question=item["question"][:40 + 9 * index]) for index, item in enumerate(items)]
    records, work = {}, {}
    for shared in (True, False):
        states = WeightStates(model, detected, [{}])
        options = ScoringOptions(batch_size=4, show_progress=False, shared_prompt=shared)
        (records[shared],) = score_states(states, tokenizer, detected, items, options, "bigbench_epistemic")
        work[shared] = states.work[0]
    for packed, rows in zip(records[True], records[False]):
        assert (packed["correct"], packed["prediction"], packed["answer_len"]) == \
            (rows["correct"], rows["prediction"], rows["answer_len"])
        assert packed["choice_logprobs"] == pytest.approx(rows["choice_logprobs"], abs=1e-5)
        assert packed["answer_logprob"] == pytest.approx(rows["answer_logprob"], abs=1e-5)
    method = describe_scoring(ScoringOptions(), detected, tokenizer, "bigbench_epistemic", items[0], CPU)["method"]
    # Each choice a few tokens after a prompt of 40 characters or more: well under the two rows' work.
    assert work[True] < 0.7 * work[False] if method == "sequences" else work[True] == work[False]


@pytest.mark.parametrize("family", ["gptj", "qwen2"])  # eager attention, and SDPA
def test_a_shared_prompt_in_float16_stays_finite_and_close_to_one_row_per_choice(tiny_models, sample_items, family):
    """The mask's minimum added to float16 scores must not make a softmax row empty (NaN)."""
    model, tokenizer, detected = load_model(tiny_models[family], dtype="float16")
    items = sample_items["bigbench_epistemic"]
    records = [score_items(model, tokenizer, detected, items, ScoringOptions(batch_size=2, show_progress=False,
                                                                           shared_prompt=shared), "bigbench_epistemic")
               for shared in (True, False)]
    assert describe_scoring(ScoringOptions(), detected, tokenizer, "bigbench_epistemic", items[0],
                            CPU)["method"] == "sequences"
    for packed, rows in zip(*records):
        assert all(math.isfinite(value) for value in packed["choice_logprobs"])
        assert packed["choice_logprobs"] == pytest.approx(rows["choice_logprobs"], abs=0.05)


def test_pack_keeps_the_shared_tokens_once_and_moves_each_rows_positions():
    rows = [Row([1, 2, 3, 4], [2], [4]), Row([1, 2, 3, 5, 6], [2, 3], [5, 6]), Row([1, 2, 7], [1], [7])]
    sequence = pack(rows, [4, 5, 6])
    assert sequence.ids == [1, 2, 3, 4, 3, 5, 6, 7]
    assert sequence.branches == [0, 0, 1, 1, 2, 2, 2, 3]
    assert sequence.position_ids == [0, 1, 2, 3, 2, 3, 4, 2]
    assert [row.positions for row in sequence.rows] == [[2], [4, 5], [1]]
    assert [row.targets for row in sequence.rows] == [[4], [5, 6], [7]]
    assert sequence.numbers == [4, 5, 6]
    mask, positions = packed_attention([sequence, single(Row([9, 9], [1]), 0)], 8, torch.float32, CPU)
    allowed = (mask[:, 0] == 0).int().tolist()
    assert allowed[0] == [[1, 0, 0, 0, 0, 0, 0, 0],
                          [1, 1, 0, 0, 0, 0, 0, 0],
                          [1, 1, 1, 0, 0, 0, 0, 0],
                          [1, 1, 1, 1, 0, 0, 0, 0],
                          [1, 1, 0, 0, 1, 0, 0, 0],
                          [1, 1, 0, 0, 1, 1, 0, 0],
                          [1, 1, 0, 0, 1, 1, 1, 0],
                          [1, 1, 0, 0, 0, 0, 0, 1]]
    assert allowed[1][:2] == [[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]]  # a plain row: causal
    # Padding is never attended by another position; each padding position sees itself.
    assert all(allowed[1][query][key] == (query == key) for query in range(8) for key in range(2, 8))
    assert positions.tolist() == [[0, 1, 2, 3, 2, 3, 4, 2], [0, 1, 0, 0, 0, 0, 0, 0]]
    assert mask.min().item() == torch.finfo(torch.float32).min


@pytest.mark.parametrize("masked_loss, extra", [("original", 1), ("corrected", 0)])
def test_roberta_open_answers_mask_the_answer_and_fill_five_masks(tiny_models, masked_loss, extra, sample_items):
    model, tokenizer, detected = load_model(tiny_models["roberta"])
    item = sample_items["bigbench_wikidata"][1]
    (record,) = score_items(model, tokenizer, detected, [item],
                            ScoringOptions(show_progress=False, masked_loss=masked_loss), "bigbench_wikidata")
    ids = tokenizer(item["question"] + " " + item["answer"], add_special_tokens=False).input_ids
    n = answer_length(tokenizer, ids, item["answer"])
    masked = ids[:-n] + [tokenizer.mask_token_id] * n
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(torch.tensor([masked])).logits[0], dim=-1)
        fill_ids = tokenizer(item["question"] + " <mask>" * 5).input_ids
        fill = model(torch.tensor([fill_ids])).logits[0].argmax(-1)
    assert record["answer_logprob"] == pytest.approx(sum(logprobs[p, ids[p]].item() for p in range(len(ids) - n, len(ids))), abs=1e-5)
    assert record["answer_len"] == n + extra
    positions = [p for p, token in enumerate(fill_ids) if token == tokenizer.mask_token_id]
    assert record["prediction"] == tokenizer.decode(fill[positions].tolist()).strip()
    assert record["correct"] == (item["answer"].lower() in record["prediction"].lower())
    assert describe_scoring(ScoringOptions(masked_loss=masked_loss), detected, tokenizer, "bigbench_wikidata",
                            item, CPU) == {"method": "mask_fill", "batch_size": 64, "masks": 5, "masked_loss": masked_loss}


def test_generation_length_is_the_datasets_unless_configured(tiny_models, sample_items):
    model, tokenizer, detected = load_model(tiny_models["gptj"])
    item = sample_items["hotpotqa"][0]
    described = describe_scoring(ScoringOptions(), detected, tokenizer, "hotpotqa", item, CPU)
    assert described == {"method": "generation", "batch_size": 64, "max_new_tokens": 15,
                         "generation_match": "full_text", "do_sample": False}
    assert describe_scoring(ScoringOptions(max_new_tokens=3), detected, tokenizer, "hotpotqa", item,
                            CPU)["max_new_tokens"] == 3
    (record,) = score_items(model, tokenizer, detected, [item], ScoringOptions(show_progress=False), "hotpotqa")
    prompt = tokenizer(item["question"] + "? The answer is", return_tensors="pt").input_ids
    with torch.inference_mode():
        reference = model.generate(prompt, max_new_tokens=15, min_new_tokens=1, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id)[0, prompt.shape[1]:]
    assert record["prediction"] == tokenizer.decode(reference, skip_special_tokens=True)


def test_unknown_switch_values_are_refused():
    with pytest.raises(LaserflowError, match="masked_loss 'sum' is not one of original, corrected"):
        ScoringOptions(masked_loss="sum")


def test_generation_batches_fill_half_the_free_gpu_memory():
    from transformers import LlamaConfig

    # Llama-2 7B in float32, 26 tokens: 4 × (26 × (2 × 32 × 4096 + 11008) + 32000) bytes a sequence.
    config = LlamaConfig(hidden_size=4096, num_hidden_layers=32, intermediate_size=11008, vocab_size=32000)
    per_sequence = 4 * (26 * (2 * 32 * 4096 + 11008) + 32000)
    assert sequences_in_memory(config, 4, 26, 40 * 2**30) == int(0.5 * 40 * 2**30 // per_sequence) == 752
    assert sequences_in_memory(config, 4, 26, 100 * 2**30) == 1024  # 1,881 would fit: at most 1024
    assert sequences_in_memory(config, 4, 26, 2**20) == 1  # always at least one


def test_generation_batch_size_is_the_configured_one_off_a_gpu(tiny_models):
    model, _, _ = load_model(tiny_models["llama"])
    assert (generation_batch_size(8, model, 20), generation_batch_size("auto", model, 20)) == (8, 64)
