"""Tiny models of the real architectures, with random weights and a locally trained tokenizer.

They stand in for the paper's and today's models offline: the same transformers classes, parameter
names and tokenizer conventions (GPT-2 byte-level BPE for GPT-J, Phi, GPT-2, GPT-NeoX and Qwen2,
SentencePiece-style metaspace with BOS for Llama and Phi-3, Gemma's SentencePiece without a
word-start marker on the first word, RoBERTa's ``<s> … </s>`` with a ``<mask>`` token), small
enough to run a sweep on a laptop CPU. ``TinySpec.family`` names the architecture: a family or a
transformers model type it covers (``gemma2`` builds a Gemma-2 model of the llama family). The
tokenizer is trained on the demo datasets' text so that every answer the protocol needs as one
token is one token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .io import LaserflowError, atomic_dir

# Architecture (a transformers model type) -> tokenizer style.
STYLES = {"gptj": "byte_level", "phi": "byte_level", "llama": "metaspace", "roberta": "roberta",
          "gpt2": "byte_level", "gpt_neox": "byte_level", "qwen2": "byte_level", "phi3": "metaspace",
          "gemma": "gemma", "gemma2": "gemma"}


@dataclass(frozen=True)
class TinySpec:
    family: str
    layers: int = 4
    hidden: int = 256
    heads: int = 8
    intermediate: int = 1024
    seed: int = 0


def tiny_spec(spec: dict) -> TinySpec:
    """The TinySpec of a model's config entry (``{"tiny": {...}}``), defaults filled in."""
    defaults = TinySpec(family=spec["tiny"]["family"])
    return TinySpec(**{key: spec["tiny"].get(key, getattr(defaults, key)) for key in TinySpec.__dataclass_fields__})


def _train_tokenizer(style: str, texts: list[str]):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    byte_alphabet = pre_tokenizers.ByteLevel.alphabet()
    # A vocabulary cap far above what the corpus needs: BPE merges until every word is one token.
    vocab_size = 200_000
    if style == "byte_level":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        special = ["<|endoftext|>"]
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, initial_alphabet=byte_alphabet, show_progress=False))
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token=special[0], eos_token=special[0], unk_token=special[0])
    if style == "metaspace":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        special = ["<unk>", "<s>", "</s>"]
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, show_progress=False))
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if style == "gemma":
        # Gemma's SentencePiece: spaces become "▁" but no marker is added before the first word.
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
        special = ["<pad>", "<eos>", "<bos>", "<unk>"]
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, show_progress=False))
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 2)])
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>")
    if style == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        special = ["<s>", "<pad>", "</s>", "<unk>"]
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=special, initial_alphabet=byte_alphabet, show_progress=False))
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
            mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    raise LaserflowError(f"unknown tokenizer style '{style}'")


def _model_config(spec: TinySpec, tokenizer):
    import transformers

    vocab = len(tokenizer)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    head_dim = spec.hidden // spec.heads
    # Llama-layout models: the same sizes under the same key names.
    llama_sizes = {"vocab_size": vocab, "hidden_size": spec.hidden, "intermediate_size": spec.intermediate,
                   "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads,
                   "max_position_embeddings": 512} | ids
    # Grouped-query attention (half as many key/value heads) where the family has it, so that
    # fused q/k/v parts of unequal sizes are exercised.
    kv_heads = {"num_key_value_heads": max(1, spec.heads // 2)}
    if spec.family == "gptj":
        return transformers.GPTJConfig(vocab_size=vocab, n_positions=512, n_embd=spec.hidden, n_layer=spec.layers,
                                       n_head=spec.heads, rotary_dim=head_dim // 2, n_inner=spec.intermediate,
                                       tie_word_embeddings=False, **ids)
    if spec.family == "llama":
        return transformers.LlamaConfig(num_key_value_heads=spec.heads, tie_word_embeddings=False, **llama_sizes)
    if spec.family == "phi":
        return transformers.PhiConfig(partial_rotary_factor=0.5, **llama_sizes)
    if spec.family == "roberta":
        return transformers.RobertaConfig(vocab_size=vocab, hidden_size=spec.hidden, intermediate_size=spec.intermediate,
                                          num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                                          max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id, **ids)
    if spec.family == "gpt2":
        return transformers.GPT2Config(vocab_size=vocab, n_positions=512, n_embd=spec.hidden, n_layer=spec.layers,
                                       n_head=spec.heads, n_inner=spec.intermediate, **ids)
    if spec.family == "gpt_neox":
        return transformers.GPTNeoXConfig(rotary_pct=0.25, **llama_sizes)
    if spec.family == "qwen2":
        return transformers.Qwen2Config(tie_word_embeddings=False, **kv_heads, **llama_sizes)
    if spec.family == "phi3":
        return transformers.Phi3Config(original_max_position_embeddings=512, pad_token_id=None, **kv_heads,
                                       **llama_sizes)
    if spec.family in ("gemma", "gemma2"):
        gemma = {"head_dim": head_dim, "pad_token_id": tokenizer.pad_token_id, **kv_heads, **llama_sizes}
        if spec.family == "gemma":
            return transformers.GemmaConfig(**gemma)
        return transformers.Gemma2Config(query_pre_attn_scalar=head_dim, sliding_window=256, **gemma)
    raise LaserflowError(f"no tiny model for family '{spec.family}'; valid: {', '.join(STYLES)}")


def build_tiny_model(spec: TinySpec, texts: list[str], out_dir: str | os.PathLike) -> None:
    """Train the tokenizer on ``texts``, build a random model (seeded) and save both atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    if spec.family not in STYLES:
        raise LaserflowError(f"no tiny model for family '{spec.family}'; valid: {', '.join(STYLES)}")
    tokenizer = _train_tokenizer(STYLES[spec.family], texts)
    config = _model_config(spec, tokenizer)
    torch.manual_seed(spec.seed)
    model_class = AutoModelForMaskedLM if STYLES[spec.family] == "roberta" else AutoModelForCausalLM
    model = model_class.from_config(config, dtype=torch.float32)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def item_texts(name: str, items: list[dict]) -> list[str]:
    """Each item's prompt and answer, and the dataset's label words after a space (three times)."""
    from .data.catalog import dataset_info
    from .prompts import PROMPTS
    from .settings import ScoringOptions

    texts = [PROMPTS[name](item, False, None, ScoringOptions()) + " " + item.get("answer", "").strip()
             for item in items]
    return texts + ["".join(" " + choice for choice in dataset_info(name).choices)] * 3


def corpus_texts(sources: dict[str, str]) -> list[str]:
    """Text the tiny tokenizers are trained on, from each dataset's raw source (name -> raw file)."""
    from .data.prepare import raw_items

    return [text for name, path in sources.items() for text in item_texts(name, raw_items(name, path))]
