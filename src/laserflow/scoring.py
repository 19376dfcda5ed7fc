"""Batched scoring of processed items, per dataset and model family, as in the original scripts.

Each item becomes a request (``laserflow.prompts``); requests become rows, one forward
sequence each, scored in length-sorted batches:
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

import logging
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .data.catalog import dataset_info
from .families import Family
from .io import LaserflowError
from .prompts import MASK, TRUTHFULQA_PROMPTS, Request, build_request

log = logging.getLogger(__name__)

GENERATION_MATCHES = ("full_text", "continuation")
MASKED_LOSSES = ("original", "corrected")
TOP_K = 10


@dataclass(frozen=True)
class ScoringOptions:
    batch_size: int | str = "auto"
    max_new_tokens: int | None = None  # None: the dataset's (15 for HotPotQA, 10 otherwise)
    generation_match: str = "full_text"
    masked_loss: str = "original"
    truthfulqa_prompt: str = "original"
    show_progress: bool = True

    def check(self) -> None:
        for key, valid in (("generation_match", GENERATION_MATCHES), ("masked_loss", MASKED_LOSSES),
                           ("truthfulqa_prompt", TRUTHFULQA_PROMPTS)):
            if getattr(self, key) not in valid:
                raise LaserflowError(f"{key} '{getattr(self, key)}' is not one of {', '.join(valid)}")


AUTO_BATCH_SIZE = {"cpu": 64, "cuda": 256}


def resolve_batch_size(batch_size: int | str, device: torch.device) -> int:
    """An integer batch size; 'auto' starts from a per-device default (halved on out-of-memory)."""
    if batch_size == "auto":
        return AUTO_BATCH_SIZE.get(device.type, 64)
    return int(batch_size)


def _norm(text: str) -> str:
    return text.lower().strip()


def answer_length(tokenizer, ids: list[int], answer: str) -> int:
    """Token count of the answer at the end of ``ids``: the shortest suffix that decodes to it.

    This is the original ``find_answer_len``; it works for byte-level and metaspace tokenizers.
    """
    target = answer.strip()
    for length in range(1, len(ids) + 1):
        if tokenizer.decode(ids[-length:]).strip() == target:
            return length
    raise LaserflowError(f"answer {answer!r} is not a token suffix of its question + answer")


def _pad(sequences: list[list[int]], pad_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(seq) for seq in sequences)
    ids, mask = [], []
    for seq in sequences:
        padding = width - len(seq)
        ids.append([pad_id] * padding + seq if left else seq + [pad_id] * padding)
        mask.append([0] * padding + [1] * len(seq) if left else [1] * len(seq) + [0] * padding)
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def _run_batched(items: list[dict], lengths: list[int], batch_size: int, step, show_progress: bool, desc: str) -> list:
    """Apply ``step(batch_items)`` over length-sorted batches; halve the batch on out-of-memory."""
    order = sorted(range(len(items)), key=lambda i: -lengths[i])
    results: list = [None] * len(items)
    position = 0
    bar = tqdm(total=len(items), desc=desc, disable=not show_progress, mininterval=2.0)
    while position < len(order):
        chunk = order[position:position + batch_size]
        try:
            outputs = step([items[i] for i in chunk])
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            log.warning("out of memory; retrying with batch size %d", batch_size)
            torch.cuda.empty_cache()
            continue
        for index, output in zip(chunk, outputs):
            results[index] = output
        position += len(chunk)
        bar.update(len(chunk))
    bar.close()
    return results


class _TokenText:
    """Decoded text of single tokens, cached (top-k decoding is per item and per rank)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        if token not in self.cache:
            self.cache[token] = self.tokenizer.decode([token])
        return self.cache[token]


def _head_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the full vocabulary at the (row, col) positions only.

    The language-model head runs on the selected hidden states alone, which saves its cost and
    the batch × length × vocabulary logits tensor.
    """
    hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    return torch.log_softmax(model.lm_head(hidden[rows, cols]).float(), dim=-1)


@dataclass
class _Row:
    """One forward sequence and what is read from it.

    ``positions`` are where distributions are read (for a causal model, the position before each
    scored token); ``targets`` the gold token at each; ``candidates`` label tokens compared at the
    first position.
    """

    ids: list[int]
    positions: list[int]
    targets: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


def _read_batch(model, pad_id: int, batch: list[_Row], device) -> list[dict]:
    """Target log-probs, argmax tokens, top-k at the first position and candidate log-probs."""
    ids, mask = _pad([row.ids for row in batch], pad_id, left=False, device=device)
    rows, cols, firsts = [], [], []
    for number, row in enumerate(batch):
        firsts.append(len(cols))
        rows += [number] * len(row.positions)
        cols += row.positions
    logprobs = _head_logprobs(model, ids, mask, torch.tensor(rows, device=device), torch.tensor(cols, device=device))
    targets = torch.tensor([t for row in batch for t in (row.targets or [0] * len(row.positions))], device=device)
    target_lp = logprobs.gather(1, targets[:, None])[:, 0].tolist()
    argmax = logprobs.argmax(-1).tolist()
    first = logprobs[torch.tensor(firsts, device=device)]
    top = torch.topk(first, k=min(TOP_K, first.shape[-1]), dim=-1).indices.tolist()
    width = max(len(row.candidates) for row in batch)
    candidate_ids = torch.tensor([row.candidates + [0] * (width - len(row.candidates)) for row in batch], device=device)
    candidate_lp = first.gather(1, candidate_ids).tolist() if width else [[] for _ in batch]
    out = []
    for number, (row, start) in enumerate(zip(batch, firsts)):
        span = slice(start, start + len(row.positions))
        out.append({"target_logprobs": target_lp[span] if row.targets else [], "argmax": argmax[span],
                    "top": top[number], "candidates": candidate_lp[number][:len(row.candidates)]})
    return out


def _generate(model, tokenizer, batch: list[dict], max_new_tokens: int, device) -> list[list[int]]:
    """Greedy continuations (token ids) of left-padded prompts."""
    from transformers import GenerationConfig

    ids, mask = _pad([entry["ids"] for entry in batch], tokenizer.pad_token_id, left=True, device=device)
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id)
    generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    return generated[:, ids.shape[1]:].tolist()


class _RowBuilder:
    """Turns requests into rows; each request keeps the indices of its rows.

    Rows are declared first (text + how its ids become a row) and tokenized together in
    ``build``: one batched tokenizer call instead of one per row.
    """

    def __init__(self, tokenizer, family: Family):
        self.tokenizer = tokenizer
        self.masked = family.scoring == "masked"
        self.protocol = "masked-LM" if self.masked else family.name
        self.pending: list[tuple[str, bool, object]] = []  # (text, add_special_tokens, ids -> _Row)

    def add(self, text: str, special_tokens: bool, make_row) -> int:
        self.pending.append((text, special_tokens, make_row))
        return len(self.pending) - 1

    def build(self) -> list[_Row]:
        ids: list = [None] * len(self.pending)
        for special in (True, False):
            chosen = [i for i, (_, flag, _) in enumerate(self.pending) if flag == special]
            if chosen:
                encoded = self.tokenizer([self.pending[i][0] for i in chosen], add_special_tokens=special).input_ids
                for i, row_ids in zip(chosen, encoded):
                    ids[i] = row_ids
        return [make_row(row_ids) for (_, _, make_row), row_ids in zip(self.pending, ids)]

    def continuation(self, prompt: str, continuation: str) -> int:
        """Teacher forcing (causal) or masking (RoBERTa) of the continuation's tokens after the prompt."""
        if self.masked:
            # The original scores f"{prompt} {answer}" without special tokens, the answer masked.
            def masked_row(ids):
                n = answer_length(self.tokenizer, ids, continuation)
                return _Row(ids[:-n] + [self.tokenizer.mask_token_id] * n, list(range(len(ids) - n, len(ids))), ids[-n:])

            return self.add(prompt + continuation, False, masked_row)

        def forced_row(ids):
            n = answer_length(self.tokenizer, ids, continuation)
            return _Row(ids, list(range(len(ids) - n - 1, len(ids) - 1)), ids[-n:])

        return self.add(prompt + continuation, True, forced_row)

    def at_end(self, prompt: str, candidates: list[int] = (), target: int | None = None) -> int:
        """The distribution at the mask (RoBERTa) or after the prompt's last token."""
        def end_row(ids):
            position = ids.index(self.tokenizer.mask_token_id) if self.masked else len(ids) - 1
            return _Row(ids, [position], [] if target is None else [target], list(candidates))

        return self.add(prompt, True, end_row)

    def masks(self, prompt: str, count: int) -> int:
        def fill_row(ids):
            return _Row(ids, [i for i, token in enumerate(ids) if token == self.tokenizer.mask_token_id])

        return self.add(prompt + f" {MASK}" * count, True, fill_row)

    def single_token(self, text: str, what: str, index: int) -> int:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise LaserflowError(f"item {index}: {what} {text!r} is {len(ids)} tokens; the {self.protocol} protocol needs one")
        return ids[0]


FILL_MASKS = 5  # RoBERTa open-ended answers: the argmax token at each of five appended masks


def _plan(builder: _RowBuilder, family: Family, request: Request, index: int) -> dict:
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


def _record(request: Request, plan: dict, read: list[dict], token_text: _TokenText, masked_extra: int,
            generated: str | None, full_text: str | None, options: "ScoringOptions") -> dict:
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


def score_items(model, tokenizer, family: Family, items: list[dict], options: ScoringOptions,
                dataset: str = "counterfact") -> list[dict]:
    """Per-item records (index, correct, answer_logprob, answer_len, prediction, …) in item order."""
    options.check()
    info = dataset_info(dataset)
    device = next(model.parameters()).device
    batch_size = resolve_batch_size(options.batch_size, device)
    token_text = _TokenText(tokenizer)
    requests = [build_request(info, family, tokenizer, item, options) for item in items]
    builder = _RowBuilder(tokenizer, family)
    plans = [_plan(builder, family, request, item["index"]) for request, item in zip(requests, items)]
    masked_extra = 1 if family.scoring == "masked" and options.masked_loss == "original" else 0
    rows = builder.build()
    with torch.inference_mode():
        read = _run_batched(rows, [len(row.ids) for row in rows], batch_size,
                            lambda batch: _read_batch(model, tokenizer.pad_token_id, batch, device),
                            options.show_progress, f"scoring {dataset}")
        to_generate = [i for i, request in enumerate(requests) if request.method == "generation"]
        prompts, continuations = [], []
        if to_generate:
            prompts = [{"ids": ids} for ids in tokenizer([requests[i].prompt for i in to_generate]).input_ids]
            max_new_tokens = options.max_new_tokens or info.max_new_tokens
            continuations = _run_batched(prompts, [len(p["ids"]) for p in prompts], batch_size,
                                         lambda batch: _generate(model, tokenizer, batch, max_new_tokens, device),
                                         options.show_progress, f"generating {dataset}")
    generated = {i: (tokenizer.decode(new, skip_special_tokens=True),
                     tokenizer.decode(prompt["ids"] + new, skip_special_tokens=True))
                 for i, prompt, new in zip(to_generate, prompts, continuations)}
    return [
        {"index": item["index"]} | _record(request, plan, read, token_text, masked_extra,
                                           *generated.get(i, (None, None)), options)
        for i, (item, request, plan) in enumerate(zip(items, requests, plans))
    ]


def describe_scoring(options: ScoringOptions, family: Family, tokenizer, dataset: str, item: dict) -> dict:
    """How a dataset was scored on this model, for the summary (the method and the switches used)."""
    info = dataset_info(dataset)
    method = build_request(info, family, tokenizer, item, options).method
    out = {"method": method, "batch_size": options.batch_size}
    if method == "generation":
        out |= {"max_new_tokens": options.max_new_tokens or info.max_new_tokens,
                "generation_match": options.generation_match, "do_sample": False}
    if method == "mask_fill":
        out |= {"masks": FILL_MASKS}
    if family.scoring == "masked" and method in ("mask_fill", "sequences"):
        out |= {"masked_loss": options.masked_loss}
    if dataset == "truthfulqa":
        out |= {"truthfulqa_prompt": options.truthfulqa_prompt}
    return out


def split_metrics(records: list[dict], n_val: int) -> dict:
    """Accuracy (%) and log-loss on validation (first ``n_val``), test (the rest) and all items."""

    def metrics(part: list[dict]) -> dict:
        if not part:
            return {"n": 0, "acc": None, "logloss": None}
        out = {
            "n": len(part),
            "acc": 100.0 * sum(r["correct"] for r in part) / len(part),
            "logloss": sum(-r["answer_logprob"] / max(1, r["answer_len"]) for r in part) / len(part),
        }
        for key in ("top5", "top10"):
            if key in part[0]:
                out[f"{key}_acc"] = 100.0 * sum(r[key] for r in part) / len(part)
        return out

    return {"val": metrics(records[:n_val]), "test": metrics(records[n_val:]), "all": metrics(records)}


def validation_size(n_items: int, fraction: float = 0.2) -> int:
    """The original's boundary: the first int(0.2·N) items validate, the rest test."""
    return int(fraction * n_items)
