"""Batched forward passes: token rows, length-sorted batches (halved on out-of-memory), log-probs
read at chosen positions only, and greedy generation.

A row is one forward sequence and the positions read from it (``Row``); ``RowBuilder`` turns
prompts into rows with one batched tokenizer call. ``laserflow.scoring`` decides which rows an
item needs and turns what they read into the item's record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .families import Family
from .io import LaserflowError
from .prompts import MASK

log = logging.getLogger(__name__)

TOP_K = 10

AUTO_BATCH_SIZE = {"cpu": 64, "cuda": 256}


def resolve_batch_size(batch_size: int | str, device: torch.device) -> int:
    """An integer batch size; 'auto' starts from a per-device default (halved on out-of-memory)."""
    if batch_size == "auto":
        return AUTO_BATCH_SIZE.get(device.type, 64)
    return int(batch_size)


def answer_length(tokenizer, ids: list[int], answer: str) -> int:
    """Token count of the answer at the end of ``ids``: the shortest suffix that decodes to it.

    This is the original ``find_answer_len``; it works for byte-level and metaspace tokenizers.
    """
    target = answer.strip()
    for length in range(1, len(ids) + 1):
        if tokenizer.decode(ids[-length:]).strip() == target:
            return length
    raise LaserflowError(f"answer {answer!r} is not a token suffix of its question + answer")


def pad(sequences: list[list[int]], pad_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(seq) for seq in sequences)
    ids, mask = [], []
    for seq in sequences:
        padding = width - len(seq)
        ids.append([pad_id] * padding + seq if left else seq + [pad_id] * padding)
        mask.append([0] * padding + [1] * len(seq) if left else [1] * len(seq) + [0] * padding)
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def run_batched(items: list[dict], lengths: list[int], batch_size: int, step, show_progress: bool, desc: str) -> list:
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


class TokenText:
    """Decoded text of single tokens, cached (top-k decoding is per item and per rank)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        if token not in self.cache:
            self.cache[token] = self.tokenizer.decode([token])
        return self.cache[token]


def head_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the full vocabulary at the (row, col) positions only.

    The language-model head runs on the selected hidden states alone, which saves its cost and
    the batch × length × vocabulary logits tensor.
    """
    hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    logits = model.lm_head(hidden[rows, cols])
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:  # Gemma-2 caps its logits in the model's forward, after the head
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits.float(), dim=-1)


@dataclass
class Row:
    """One forward sequence and what is read from it.

    ``positions`` are where distributions are read (for a causal model, the position before each
    scored token); ``targets`` the gold token at each; ``candidates`` label tokens compared at the
    first position.
    """

    ids: list[int]
    positions: list[int]
    targets: list[int] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)


def read_batch(model, pad_id: int, batch: list[Row], device) -> list[dict]:
    """Target log-probs, argmax tokens, top-k at the first position and candidate log-probs."""
    ids, mask = pad([row.ids for row in batch], pad_id, left=False, device=device)
    rows, cols, firsts = [], [], []
    for number, row in enumerate(batch):
        firsts.append(len(cols))
        rows += [number] * len(row.positions)
        cols += row.positions
    logprobs = head_logprobs(model, ids, mask, torch.tensor(rows, device=device), torch.tensor(cols, device=device))
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


def generate(model, tokenizer, batch: list[dict], max_new_tokens: int, device) -> list[list[int]]:
    """Greedy continuations (token ids) of left-padded prompts."""
    from transformers import GenerationConfig

    ids, mask = pad([entry["ids"] for entry in batch], tokenizer.pad_token_id, left=True, device=device)
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id)
    generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    return generated[:, ids.shape[1]:].tolist()


class RowBuilder:
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

    def build(self) -> list[Row]:
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
                return Row(ids[:-n] + [self.tokenizer.mask_token_id] * n, list(range(len(ids) - n, len(ids))), ids[-n:])

            return self.add(prompt + continuation, False, masked_row)

        def forced_row(ids):
            n = answer_length(self.tokenizer, ids, continuation)
            return Row(ids, list(range(len(ids) - n - 1, len(ids) - 1)), ids[-n:])

        return self.add(prompt + continuation, True, forced_row)

    def at_end(self, prompt: str, candidates: list[int] = (), target: int | None = None) -> int:
        """The distribution at the mask (RoBERTa) or after the prompt's last token."""
        def end_row(ids):
            position = ids.index(self.tokenizer.mask_token_id) if self.masked else len(ids) - 1
            return Row(ids, [position], [] if target is None else [target], list(candidates))

        return self.add(prompt, True, end_row)

    def masks(self, prompt: str, count: int) -> int:
        def fill_row(ids):
            return Row(ids, [i for i, token in enumerate(ids) if token == self.tokenizer.mask_token_id])

        return self.add(prompt + f" {MASK}" * count, True, fill_row)

    def single_token(self, text: str, what: str, index: int) -> int:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise LaserflowError(f"item {index}: {what} {text!r} is {len(ids)} tokens; the {self.protocol} protocol needs one")
        return ids[0]
