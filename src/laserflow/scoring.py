"""Per-item scoring, per dataset and model family, as in the original scripts.

Each item becomes a request (``laserflow.prompts``) and the rows it needs; ``laserflow.forward``
runs the rows in batches; what they read becomes the item's record:
- next_token (CounterFact on GPT-J, Phi): the top-1 next token after the question equals the
  answer (lower-cased, stripped); top-5/top-10 membership is recorded too.
- generation (Llama's CounterFact, open-ended questions): greedy generation (``do_sample=False``)
  of the dataset's ``max_new_tokens``; correct if the answer is contained in the decoded text. The
  original decodes prompt + continuation, so an answer already present in the question counts
  ("full_text", the default for fidelity); "continuation" tests the new tokens only.
- mask_token (RoBERTa CounterFact): the top-1 token at the mask equals the answer.
- mask_fill (RoBERTa open-ended): the argmax tokens at five masks appended to the prompt, decoded,
  contain the answer.
- labels: the label words' log-probs at the last position (or the mask); two labels are correct
  only when the gold one is strictly greater, more take the argmax.
- sequences (BIG-bench choices of several tokens, and RoBERTa's): argmax of the summed log-prob of
  prompt + " " + choice (unnormalised, as the original).

Every item also gets the gold answer's log-probability under the full vocabulary and its token
count, so log-loss = −answer_logprob / answer_len. RoBERTa's masked answers count one token too
many in the original (``masked_loss: original``); ``corrected`` divides by the masked tokens.
"""

from __future__ import annotations

import torch

from .data.catalog import dataset_info
from .families import Family
from .forward import (Row, RowBuilder, Sequence, TokenText, WeightStates, check_context, context_length, generate,
                      generation_batch_size, pack, read_batch, resolve_batch_size, run_batched, single)
from .io import LaserflowError
from .prompts import Request, build_request
from .settings import ScoringOptions


def _norm(text: str) -> str:
    return text.lower().strip()


FILL_MASKS = 5  # RoBERTa open-ended answers: the argmax token at each of five appended masks


def _plan(builder: RowBuilder, family: Family, request: Request, index: int) -> dict:
    """The rows one request needs (their indices) and what its record is built from."""
    method = request.method
    if method in ("next_token", "generation"):
        return {"loss": builder.continuation(request.prompt, request.continuation)}
    if method == "mask_token":
        gold = builder.single_token(request.answer, "answer", index)
        return {"loss": builder.at_end(request.prompt, target=gold)}
    if method == "mask_fill":
        return {"loss": builder.continuation(request.prompt, request.continuation),
                "fill": builder.masks(request.prompt, FILL_MASKS)}
    if method == "labels":
        words = [builder.single_token(family.label_prefix + choice, "label", index) for choice in request.choices]
        return {"labels": builder.at_end(request.prompt, candidates=words)}
    if method == "sequences":
        return {"choices": [builder.continuation(request.prompt, " " + choice) for choice in request.choices]}
    raise LaserflowError(f"unknown scoring method '{method}'")


def _record(request: Request, plan: dict, read: list[dict], token_text: TokenText, masked_extra: int,
            generated: str | None, full_text: str | None, options: ScoringOptions) -> dict:
    """An item's record from what its rows read."""
    if "labels" in plan:
        scores = read[plan["labels"]]["candidates"]
        return _choice_record(request, scores, [1] * len(scores))
    if "choices" in plan:
        sums = [sum(read[row]["target_logprobs"]) for row in plan["choices"]]
        lengths = [len(read[row]["target_logprobs"]) + masked_extra for row in plan["choices"]]
        return _choice_record(request, sums, lengths)
    loss = read[plan["loss"]]
    record = {"answer_logprob": sum(loss["target_logprobs"]),
              "answer_len": len(loss["target_logprobs"]) + (masked_extra if "fill" in plan else 0)}
    if "fill" in plan:
        text = token_text.tokenizer.decode(read[plan["fill"]]["argmax"]).strip()
        return record | {"correct": _norm(request.answer) in _norm(text), "prediction": text}
    if generated is not None:
        text = full_text if options.generation_match == "full_text" else generated
        return record | {"correct": _norm(request.answer) in _norm(text), "prediction": generated}
    texts = [token_text(token) for token in loss["top"]]
    hits = [_norm(text) == _norm(request.answer) for text in texts]
    return record | {"correct": hits[0], "prediction": texts[0], "top5": any(hits[:5]), "top10": any(hits[:10])}


def _choice_record(request: Request, logprobs: list[float], lengths: list[int]) -> dict:
    """Argmax over the choices' log-probs (the first of equal maxima); two labels compare strictly."""
    best = max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))
    gold = request.gold
    if request.strict:
        correct = all(logprobs[gold] > value for i, value in enumerate(logprobs) if i != gold)
    else:
        correct = best == gold
    return {"correct": correct, "answer_logprob": logprobs[gold], "answer_len": lengths[gold],
            "prediction": request.choices[best], "choice_logprobs": [round(value, 6) for value in logprobs]}


def plan_items(tokenizer, family: Family, items: list[dict], options: ScoringOptions,
               dataset: str) -> tuple[list[Request], list[dict], list]:
    """Each item's request, the rows it needs (indices into the rows) and the tokenized rows."""
    info = dataset_info(dataset)
    requests = [build_request(info, family, tokenizer, item, options) for item in items]
    builder = RowBuilder(tokenizer, family)
    plans = [_plan(builder, family, request, item["index"]) for request, item in zip(requests, items)]
    return requests, plans, builder.build()


def row_owners(plans: list[dict]) -> dict[int, int]:
    """Row number -> the position of the item it belongs to."""
    return {row: position for position, plan in enumerate(plans)
            for rows in plan.values() for row in (rows if isinstance(rows, list) else [rows])}


def sequences_of(rows: list[Row], plans: list[dict], family: Family, options: ScoringOptions,
                 config) -> list[Sequence]:
    """The forward sequences: with ``shared_prompt``, a causal model's choice rows of one item
    packed into one sequence (not past a sliding attention window, which the packed mask does
    not apply), every other row as it is."""
    window = getattr(config, "sliding_window", None)
    groups = []
    if options.shared_prompt and family.scoring != "masked":
        groups = [plan["choices"] for plan in plans if "choices" in plan
                  and not (window and max(len(rows[row].ids) for row in plan["choices"]) > window)]
    packed = {numbers[0]: pack([rows[row] for row in numbers], numbers) for numbers in groups}
    inside = {row for numbers in groups for row in numbers}
    return [packed[number] if number in packed else single(row, number)
            for number, row in enumerate(rows) if number in packed or number not in inside]


def score_items(model, tokenizer, family: Family, items: list[dict], options: ScoringOptions,
                dataset: str = "counterfact", n_val: int | None = None) -> list[dict]:
    """Per-item records (index, correct, answer_logprob, answer_len, prediction, …) of the model as
    it is, in item order. The first ``n_val`` items (default: all) and the others are batched
    separately."""
    return score_states(WeightStates(model, family, [{}]), tokenizer, family, items, options, dataset, n_val)[0]


def score_states(states: WeightStates, tokenizer, family: Family, items: list[dict], options: ScoringOptions,
                 dataset: str = "counterfact", n_val: int | None = None) -> list[list[dict]]:
    """Per weight state, the per-item records of ``items``, every state on the same batches.

    Batches never mix the first ``n_val`` items (the validation part) with the others, so an
    item's numbers do not depend on whether the other part is scored.
    """
    info = dataset_info(dataset)
    device = next(states.model.parameters()).device
    batch_size = resolve_batch_size(options.batch_size, device)
    token_text = TokenText(tokenizer)
    n_val = len(items) if n_val is None else n_val
    requests, plans, rows = plan_items(tokenizer, family, items, options, dataset)
    masked_extra = 1 if family.scoring == "masked" and options.masked_loss == "original" else 0
    limit = context_length(states.model.config)
    owners = row_owners(plans)
    check_context([len(rows[row].ids) for row in owners], [items[position]["index"] for position in owners.values()],
                  limit, dataset)
    sequences = sequences_of(rows, plans, family, options, states.model.config)
    with torch.inference_mode():
        per_sequence = run_batched(sequences, [len(sequence.ids) for sequence in sequences],
                                   [int(owners[sequence.numbers[0]] >= n_val) for sequence in sequences], batch_size,
                                   lambda batch: read_batch(states, tokenizer.pad_token_id, batch, device),
                                   options.show_progress, f"scoring {dataset}")
        read = [None] * len(rows)
        for sequence, reads in zip(sequences, per_sequence):
            for number, row_reads in zip(sequence.numbers, reads):
                read[number] = row_reads
        to_generate = [i for i, request in enumerate(requests) if request.method == "generation"]
        prompts, continuations = [], []
        if to_generate:
            prompts = tokenizer([requests[i].prompt for i in to_generate]).input_ids
            max_new_tokens = options.max_new_tokens or info.max_new_tokens
            check_context([len(prompt) for prompt in prompts], [items[i]["index"] for i in to_generate], limit,
                          dataset, max_new_tokens)
            longest = max(len(prompt) for prompt in prompts) + max_new_tokens
            continuations = run_batched(prompts, [len(prompt) for prompt in prompts],
                                        [int(i >= n_val) for i in to_generate],
                                        generation_batch_size(options.batch_size, states.model, longest),
                                        lambda batch: generate(states, tokenizer, batch, max_new_tokens, device),
                                        options.show_progress, f"generating {dataset}")
    out = []
    for state in range(len(states.states)):
        generated = {i: (tokenizer.decode(new[state], skip_special_tokens=True),
                         tokenizer.decode(prompt + new[state], skip_special_tokens=True))
                     for i, prompt, new in zip(to_generate, prompts, continuations)}
        reads = [row[state] for row in read]
        out.append([{"index": item["index"]} | _record(request, plan, reads, token_text, masked_extra,
                                                       *generated.get(i, (None, None)), options)
                    for i, (item, request, plan) in enumerate(zip(items, requests, plans))])
    return out


def describe_scoring(options: ScoringOptions, family: Family, tokenizer, dataset: str, item: dict,
                     device: torch.device) -> dict:
    """How a dataset was scored on this model, for the summary (the method and the switches used)."""
    info = dataset_info(dataset)
    method = build_request(info, family, tokenizer, item, options).method
    batch_size = resolve_batch_size(options.batch_size, device)
    out = {"method": method, "batch_size": batch_size}
    if method == "generation":
        out |= {"max_new_tokens": options.max_new_tokens or info.max_new_tokens,
                "generation_match": options.generation_match, "do_sample": False}
        if options.batch_size == "auto" and device.type == "cuda":
            out |= {"generation_batch_size": "auto: from the free GPU memory"}
    if method == "mask_fill":
        out |= {"masks": FILL_MASKS}
    if family.scoring == "masked" and method in ("mask_fill", "sequences"):
        out |= {"masked_loss": options.masked_loss}
    if method == "sequences":
        out |= {"shared_prompt": options.shared_prompt and family.scoring != "masked"}
    if dataset == "truthfulqa":
        out |= {"truthfulqa_prompt": options.truthfulqa_prompt}
    return out
