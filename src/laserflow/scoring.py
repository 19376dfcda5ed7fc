"""Batched scoring of question/answer items, per model family, as in the original scripts.

- next_token (GPT-J, Phi): the top-1 next token after the question equals the answer
  (lower-cased, stripped); top-5/top-10 membership is recorded too.
- generation (Llama): greedy generation (``do_sample=False``) of ``max_new_tokens``; correct if the
  answer is contained in the decoded text. The original decodes prompt + continuation, so an
  answer already present in the question counts ("full_text", the default for fidelity);
  "continuation" tests the new tokens only.
- masked (RoBERTa): ``question + "<mask>."`` (a space before the mask unless the question ends
  with one); the top-1 token at the mask equals the answer.

Every item also gets the gold answer's log-probability under the full vocabulary and its token
count, so log-loss = −answer_logprob / answer_len.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch
from tqdm.auto import tqdm

from .families import Family
from .io import LaserflowError

log = logging.getLogger(__name__)

GENERATION_MATCHES = ("full_text", "continuation")
TOP_K = 10


@dataclass(frozen=True)
class ScoringOptions:
    batch_size: int | str = "auto"
    max_new_tokens: int = 10
    generation_match: str = "full_text"
    show_progress: bool = True

    def describe(self, family: Family) -> dict:
        out = {"method": family.scoring, "batch_size": self.batch_size}
        if family.scoring == "generation":
            out |= {"max_new_tokens": self.max_new_tokens, "generation_match": self.generation_match,
                    "do_sample": False}
        return out


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
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


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


def _topk_records(token_text: _TokenText, logprobs: torch.Tensor, answers: list[str]) -> list[dict]:
    """Top-1 prediction and top-5/top-10 membership of each row's answer (lower-cased, stripped)."""
    top = torch.topk(logprobs, k=min(TOP_K, logprobs.shape[-1]), dim=-1).indices.tolist()
    out = []
    for tokens, answer in zip(top, answers):
        texts = [token_text(token) for token in tokens]
        hits = [_norm(text) == _norm(answer) for text in texts]
        out.append({"prediction": texts[0], "correct": hits[0], "top5": any(hits[:5]), "top10": any(hits[:10])})
    return out


def _head_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the full vocabulary at the (row, col) positions only.

    The language-model head runs on the selected hidden states alone, which saves its cost and
    the batch × length × vocabulary logits tensor.
    """
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    return torch.log_softmax(model.lm_head(hidden[rows, cols]).float(), dim=-1)


def _teacher_forced(model, token_text: _TokenText, pad_id: int, batch: list[dict], device) -> list[dict]:
    """One forward pass over question + answer: answer log-prob and the next-token top-k."""
    ids, mask = _pad([item["_ids"] for item in batch], pad_id, left=False, device=device)
    rows, cols, starts = [], [], []
    for row, item in enumerate(batch):
        first_answer = len(item["_ids"]) - item["_answer_len"]
        starts.append(len(cols))
        rows += [row] * item["_answer_len"]
        cols += range(first_answer - 1, len(item["_ids"]) - 1)
    rows_t = torch.tensor(rows, device=device)
    cols_t = torch.tensor(cols, device=device)
    logprobs = _head_logprobs(model, ids, mask, rows_t, cols_t)
    gold = logprobs.gather(1, ids[rows_t, cols_t + 1][:, None])[:, 0].tolist()
    firsts = torch.tensor(starts, device=device)
    top = _topk_records(token_text, logprobs[firsts], [item["answer"] for item in batch])
    out = []
    for item, start, record in zip(batch, starts, top):
        answer_logprob = sum(gold[start:start + item["_answer_len"]])
        out.append({"answer_logprob": answer_logprob, "answer_len": item["_answer_len"]} | record)
    return out


def _prepare_causal(tokenizer, items: list[dict]) -> list[dict]:
    encoded = tokenizer([item["question"] + item["answer"] for item in items]).input_ids
    return [
        item | {"_ids": ids, "_answer_len": answer_length(tokenizer, ids, item["answer"])}
        for item, ids in zip(items, encoded)
    ]


def _generate(model, tokenizer, batch: list[dict], options: ScoringOptions, device) -> list[dict]:
    from transformers import GenerationConfig

    prompts = [tokenizer(item["question"]).input_ids for item in batch]
    ids, mask = _pad(prompts, tokenizer.pad_token_id, left=True, device=device)
    config = GenerationConfig(
        do_sample=False, max_new_tokens=options.max_new_tokens, min_new_tokens=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id)
    generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    out = []
    for row, item in enumerate(batch):
        new_tokens = generated[row, ids.shape[1]:].tolist()
        continuation = tokenizer.decode(new_tokens, skip_special_tokens=True)
        full_text = tokenizer.decode(prompts[row] + new_tokens, skip_special_tokens=True)
        text = full_text if options.generation_match == "full_text" else continuation
        out.append({"correct": _norm(item["answer"]) in _norm(text), "prediction": continuation})
    return out


def _masked_prompt(question: str) -> str:
    return f"{question}<mask>." if question.endswith(" ") else f"{question} <mask>."


def _masked(model, token_text: _TokenText, pad_id: int, batch: list[dict], device) -> list[dict]:
    ids, mask = _pad([item["_ids"] for item in batch], pad_id, left=False, device=device)
    rows = torch.arange(len(batch), device=device)
    cols = torch.tensor([item["_mask_at"] for item in batch], device=device)
    logprobs = _head_logprobs(model, ids, mask, rows, cols)
    gold = logprobs.gather(1, torch.tensor([[item["_gold"]] for item in batch], device=device))[:, 0].tolist()
    top = _topk_records(token_text, logprobs, [item["answer"] for item in batch])
    return [{"answer_logprob": lp, "answer_len": 1} | record for lp, record in zip(gold, top)]


def _prepare_masked(tokenizer, items: list[dict]) -> list[dict]:
    prepared = []
    prompts = tokenizer([_masked_prompt(item["question"]) for item in items]).input_ids
    answers = tokenizer([item["answer"] for item in items], add_special_tokens=False).input_ids
    for item, ids, gold in zip(items, prompts, answers):
        if len(gold) != 1:
            raise LaserflowError(
                f"item {item['index']}: answer {item['answer']!r} is {len(gold)} tokens; "
                "the masked-LM protocol needs one"
            )
        prepared.append(item | {"_ids": ids, "_gold": gold[0], "_mask_at": ids.index(tokenizer.mask_token_id)})
    return prepared


def score_items(model, tokenizer, family: Family, items: list[dict], options: ScoringOptions) -> list[dict]:
    """Per-item records (index, correct, answer_logprob, answer_len, prediction, …) in item order."""
    if options.generation_match not in GENERATION_MATCHES:
        raise LaserflowError(
            f"generation_match '{options.generation_match}' is not one of {', '.join(GENERATION_MATCHES)}"
        )
    device = next(model.parameters()).device
    options = replace(options, batch_size=resolve_batch_size(options.batch_size, device))
    progress = options.show_progress
    token_text = _TokenText(tokenizer)
    pad_id = tokenizer.pad_token_id
    with torch.inference_mode():
        if family.scoring == "masked":
            prepared = _prepare_masked(tokenizer, items)
            lengths = [len(item["_ids"]) for item in prepared]
            scored = _run_batched(prepared, lengths, options.batch_size,
                                  lambda batch: _masked(model, token_text, pad_id, batch, device), progress,
                                  "masked LM")
        else:
            prepared = _prepare_causal(tokenizer, items)
            lengths = [len(item["_ids"]) for item in prepared]
            scored = _run_batched(prepared, lengths, options.batch_size,
                                  lambda batch: _teacher_forced(model, token_text, pad_id, batch, device),
                                  progress, "scoring")
            if family.scoring == "generation":
                generated = _run_batched(prepared, lengths, options.batch_size,
                                         lambda batch: _generate(model, tokenizer, batch, options, device),
                                         progress, "generation")
                scored = [
                    {key: value for key, value in record.items() if key not in ("top5", "top10")} | gen
                    for record, gen in zip(scored, generated)
                ]
    return [{"index": item["index"]} | record for item, record in zip(items, scored)]


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
