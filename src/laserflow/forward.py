"""Batched forward passes: token rows, length-sorted batches (halved on out-of-memory), log-probs
read at chosen positions only, and greedy generation.

A row is one token sequence and the positions read from it (``Row``); ``RowBuilder`` turns
prompts into rows with one batched tokenizer call. A forward pass runs ``Sequence``s: a row as it
is, or several rows that begin with the same tokens packed into one (``pack``). ``laserflow.scoring``
decides which rows an item needs and turns what they read into the item's record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from .families import Family
from .io import LaserflowError
from .prompts import MASK

log = logging.getLogger(__name__)

TOP_K = 10

AUTO_BATCH_SIZE = {"cpu": 64, "cuda": 256}
GENERATION_MEMORY_SHARE = 0.5  # of the free GPU memory, for the sequences of one generation batch
MAX_GENERATION_BATCH = 1024


def resolve_batch_size(batch_size: int | str, device: torch.device) -> int:
    """An integer batch size; 'auto' starts from a per-device default (halved on out-of-memory)."""
    if batch_size == "auto":
        return AUTO_BATCH_SIZE.get(device.type, 64)
    return int(batch_size)


def generation_batch_size(batch_size: int | str, model, tokens: int) -> int:
    """Sequences per generation batch: 'auto' on a GPU fills part of the free memory
    (``sequences_in_memory``); a small batch leaves greedy decoding bound by the per-step cost."""
    device = next(model.parameters()).device
    if batch_size != "auto" or device.type != "cuda":
        return resolve_batch_size(batch_size, device)
    element = next(model.parameters()).element_size()
    return sequences_in_memory(model.config, element, tokens, torch.cuda.mem_get_info(device)[0])


def sequences_in_memory(config, element_size: int, tokens: int, free_bytes: int) -> int:
    """How many sequences of ``tokens`` (prompt and new ones) fit in half of ``free_bytes``: each
    holds its key/value cache (2 × layers × hidden per token), its widest activation (the MLP's
    intermediate width per token) and one row of logits, in the model's dtype."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    intermediate = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    per_sequence = element_size * (tokens * (2 * layers * hidden + intermediate) + config.vocab_size)
    return max(1, min(MAX_GENERATION_BATCH, int(GENERATION_MEMORY_SHARE * free_bytes // per_sequence)))


def answer_length(tokenizer, ids: list[int], answer: str) -> int:
    """Token count of the answer at the end of ``ids``: the shortest suffix that decodes to it.

    This is the original ``find_answer_len``; it works for byte-level and metaspace tokenizers.
    """
    target = answer.strip()
    for length in range(1, len(ids) + 1):
        if tokenizer.decode(ids[-length:]).strip() == target:
            return length
    raise LaserflowError(f"answer {answer!r} is not a token suffix of its question + answer")


def context_length(config) -> int | None:
    """The longest sequence a model's position embeddings cover (RoBERTa's positions start after
    its padding index), or None when the config does not say."""
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if limit and getattr(config, "model_type", None) == "roberta":
        limit -= config.pad_token_id + 1
    return limit


def check_context(lengths: list[int], indexes: list[int], limit: int | None, dataset: str, new_tokens: int = 0) -> None:
    """Every item's sequence, with the tokens it will generate, fits the model's context."""
    for length, index in zip(lengths, indexes):
        if limit is not None and length + new_tokens > limit:
            generated = f" + {new_tokens} generated" if new_tokens else ""
            raise LaserflowError(f"dataset {dataset}: item {index} needs {length} tokens{generated}, more than the "
                                 f"model's context of {limit}")


def pad(sequences: list[list[int]], pad_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(seq) for seq in sequences)
    ids, mask = [], []
    for seq in sequences:
        padding = width - len(seq)
        ids.append([pad_id] * padding + seq if left else seq + [pad_id] * padding)
        mask.append([0] * padding + [1] * len(seq) if left else [1] * len(seq) + [0] * padding)
    return torch.tensor(ids, device=device), torch.tensor(mask, device=device)


def run_batched(items: list, lengths: list[int], parts: list[int], batch_size: int, step, show_progress: bool,
                desc: str) -> list:
    """Apply ``step(batch_items)`` over batches sorted by length within each part (validation,
    test), never mixing parts: an item is scored in the same batch whether or not the other part
    is scored. A part's items are split into as few batches of at most ``batch_size`` as can hold
    them, of equal sizes (66 items at 64: 33 + 33, not 64 + 2), so no short tail batch runs the
    whole model for a few items. The batch is halved on out-of-memory."""
    order = sorted(range(len(items)), key=lambda i: (parts[i], -lengths[i]))
    part_end = {parts[i]: position + 1 for position, i in enumerate(order)}
    results: list = [None] * len(items)
    position = 0
    bar = tqdm(total=len(items), desc=desc, disable=not show_progress, mininterval=2.0)
    while position < len(order):
        remaining = part_end[parts[order[position]]] - position
        batches = -(-remaining // batch_size)
        chunk = order[position:position + -(-remaining // batches)]
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


class _Replay(torch.nn.Module):
    """Stands in for the layers below a layer group's first layer: returns their recorded output."""

    def __init__(self, layer: torch.nn.Module, output):
        super().__init__()
        self.output = output
        # Plain attributes a model's loop may read from a layer (e.g. its attention type).
        for name, value in vars(layer).items():
            if not name.startswith("_") and not isinstance(value, (torch.Tensor, torch.nn.Module)):
                setattr(self, name, value)

    def forward(self, *args, **kwargs):
        return self.output


class WeightStates:
    """Several weight states of one model, run on the same batches: the base model (no edit), one
    configuration, or a layer group (every configuration editing layer ``shared`` or above).

    The layers below ``shared`` are the same in every state, so each batch runs them once; each
    state then runs the model from layer ``shared`` on, with the recorded output of the layers
    below replayed in their place (``_Replay``). That is the computation the state's own full
    forward pass does, operation for operation. A state maps parameter names to their values
    (tensors of the parameter's shape, dtype and device); it is switched in by reference.
    ``work`` counts layer-token passes per state (a layer applied to one token position; about
    2 × ``layer_parameters`` FLOPs each), the shared layers split evenly over the states.
    """

    def __init__(self, model, family: Family, states: list[dict[str, torch.Tensor]], shared: int = 0):
        self.model = model
        self.states = states
        self.shared = shared
        params = dict(model.named_parameters())
        self.params = {name: params[name] for state in states for name in state}
        self.originals = {name: param.data for name, param in self.params.items()}
        parent, _, name = family.layer_prefix.split("{layer}")[0].rstrip(".").rpartition(".")
        self.container = (model.get_submodule(parent), name)
        layers = getattr(*self.container)
        self.layers = len(layers)
        self.layer_parameters = sum(param.numel() for param in layers[0].parameters())
        self.work = [0.0] * len(states)

    def _activate(self, state: dict[str, torch.Tensor]) -> None:
        for name, param in self.params.items():
            param.data = state.get(name, self.originals[name])

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, layers: list,
                 position_ids: torch.Tensor | None) -> torch.Tensor:
        parent, name = self.container
        original = getattr(parent, name)
        setattr(parent, name, torch.nn.ModuleList(layers))
        extra = {} if position_ids is None else {"position_ids": position_ids}
        try:
            return self.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False, **extra).last_hidden_state
        finally:
            setattr(parent, name, original)

    def run(self, ids: torch.Tensor, mask: torch.Tensor, readout, position_ids: torch.Tensor | None = None) -> list:
        """``readout(last hidden state)`` under each state, in order (``mask`` a 2-D padding mask,
        or a 4-D additive one with its ``position_ids``)."""
        parent, name = self.container
        layers = list(getattr(parent, name))
        tokens = ids.numel()
        out = []
        try:
            self._activate({})
            replay = None
            if self.shared:
                recorded = []
                hook = layers[self.shared - 1].register_forward_hook(lambda module, args, output: recorded.append(output))
                try:
                    self._forward(ids, mask, layers[:self.shared], position_ids)
                finally:
                    hook.remove()
                replay = _Replay(layers[self.shared - 1], recorded[0])
            for index, state in enumerate(self.states):
                self._activate(state)
                suffix = layers[self.shared:]
                out.append(readout(self._forward(ids, mask, [replay, *suffix] if replay else suffix, position_ids)))
                self.work[index] += tokens * (len(suffix) + self.shared / len(self.states))
        finally:
            self._activate({})
        return out

    def generate(self, ids: torch.Tensor, mask: torch.Tensor, config) -> list[torch.Tensor]:
        """Greedy generation under each state (no layers shared: every token is new)."""
        out = []
        try:
            for index, state in enumerate(self.states):
                self._activate(state)
                generated = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
                out.append(generated)
                self.work[index] += self.layers * (ids.numel() + ids.shape[0] * (generated.shape[1] - ids.shape[1]))
        finally:
            self._activate({})
        return out


def head_logprobs(model, hidden: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the full vocabulary of the language-model head at the given hidden states
    only (not the batch × length × vocabulary logits); Gemma-2's logits are soft-capped first,
    as its model's forward does after the head."""
    logits = model.lm_head(hidden)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap is not None:
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


@dataclass
class Sequence:
    """The tokens of one forward pass and the rows read from it (their positions in ``ids``).

    A packed sequence holds the tokens its rows share at their start once (``branches`` 0), then
    each row's remaining tokens (``branches`` i for the i-th row), each at the position it has in
    its own row (``position_ids``): a token attends to the shared tokens and its own row's before
    it, so each row reads what its own causal pass reads. ``branches`` None: one row as it is.
    """

    ids: list[int]
    rows: list[Row]
    numbers: list[int]  # the rows' indices in the scoring's row list
    branches: list[int] | None = None
    position_ids: list[int] | None = None


def single(row: Row, number: int) -> Sequence:
    return Sequence(row.ids, [row], [number])


def pack(rows: list[Row], numbers: list[int]) -> Sequence:
    """One sequence for causal rows that begin with the same tokens (a prompt and its choices)."""
    shared, shortest = 0, min(len(row.ids) for row in rows)
    while shared < shortest and len({row.ids[shared] for row in rows}) == 1:
        shared += 1
    ids, branches, position_ids, packed = rows[0].ids[:shared], [0] * shared, list(range(shared)), []
    for branch, row in enumerate(rows, 1):
        offset = len(ids) - shared
        packed.append(replace(row, ids=[], positions=[p if p < shared else p + offset for p in row.positions]))
        ids = ids + row.ids[shared:]
        branches += [branch] * (len(row.ids) - shared)
        position_ids += range(shared, len(row.ids))
    return Sequence(ids, packed, numbers, branches, position_ids)


def packed_attention(batch: list[Sequence], width: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4-D additive attention mask (0 where a query may attend, the dtype's minimum elsewhere)
    and the position ids of right-padded sequences, packed or not."""
    branch = torch.full((len(batch), width), -1, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    for number, sequence in enumerate(batch):
        length = len(sequence.ids)
        branch[number, :length] = torch.tensor(sequence.branches or [0] * length)
        positions[number, :length] = torch.tensor(sequence.position_ids or range(length))
    query, key = branch[:, :, None], branch[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    # Padding is never attended; a padding query sees itself, so no row of the softmax is empty.
    allowed = causal & (key >= 0) & ((key == 0) | (key == query)) | torch.eye(width, dtype=torch.bool)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[:, None].to(device), positions.to(device)


def read_batch(states: WeightStates, pad_id: int, batch: list[Sequence], device) -> list[list[list[dict]]]:
    """Per sequence, per row, per weight state: the target log-probs, argmax tokens, top-k at the
    row's first position and candidate log-probs (log-softmax over the full vocabulary, with the
    language-model head applied at the read positions only)."""
    ids, mask = pad([sequence.ids for sequence in batch], pad_id, left=False, device=device)
    position_ids = None
    if any(sequence.branches for sequence in batch):
        mask, position_ids = packed_attention(batch, ids.shape[1], next(states.model.parameters()).dtype, device)
    rows = [row for sequence in batch for row in sequence.rows]
    where, cols, firsts = [], [], []
    for number, sequence in enumerate(batch):
        for row in sequence.rows:
            firsts.append(len(cols))
            where += [number] * len(row.positions)
            cols += row.positions
    where, cols = torch.tensor(where, device=device), torch.tensor(cols, device=device)
    targets = torch.tensor([t for row in rows for t in (row.targets or [0] * len(row.positions))], device=device)
    width = max(len(row.candidates) for row in rows)
    candidate_ids = torch.tensor([row.candidates + [0] * (width - len(row.candidates)) for row in rows], device=device)

    def readout(hidden: torch.Tensor) -> list[dict]:
        logprobs = head_logprobs(states.model, hidden[where, cols])
        target_lp = logprobs.gather(1, targets[:, None])[:, 0].tolist()
        argmax = logprobs.argmax(-1).tolist()
        first = logprobs[torch.tensor(firsts, device=device)]
        top = torch.topk(first, k=min(TOP_K, first.shape[-1]), dim=-1).indices.tolist()
        candidate_lp = first.gather(1, candidate_ids).tolist() if width else [[] for _ in rows]
        out = []
        for number, (row, start) in enumerate(zip(rows, firsts)):
            span = slice(start, start + len(row.positions))
            out.append({"target_logprobs": target_lp[span] if row.targets else [], "argmax": argmax[span],
                        "top": top[number], "candidates": candidate_lp[number][:len(row.candidates)]})
        return out

    per_state = states.run(ids, mask, readout, position_ids)
    out, number = [], 0
    for sequence in batch:
        out.append([[reads[number + i] for reads in per_state] for i in range(len(sequence.rows))])
        number += len(sequence.rows)
    return out


def generate(states: WeightStates, tokenizer, batch: list[list[int]], max_new_tokens: int, device) -> list[list]:
    """Per prompt, per weight state: the greedy continuation's token ids (prompts left-padded)."""
    from transformers import GenerationConfig

    ids, mask = pad(batch, tokenizer.pad_token_id, left=True, device=device)
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id)
    per_state = [generated[:, ids.shape[1]:].tolist() for generated in states.generate(ids, mask, config)]
    return [[new[number] for new in per_state] for number in range(len(batch))]


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
