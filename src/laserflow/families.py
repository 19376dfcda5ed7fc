"""Model families: the original code's matrix-type (τ) to parameter-name mapping per architecture.

A parameter is selected for (τ, ℓ) when its name starts with the family's layer prefix for ℓ and
ends with one of τ's suffixes (as in the original ``*_laser.py`` files). An edit works on the
mathematical matrix W of y = W x (out × in): GPT-2's Conv1D weights, stored in × out, are read
transposed. Where a family fuses matrices into one parameter (GPT-2 and GPT-NeoX q/k/v, Phi-3 q/k/v
and gate/up), τ names the whole fused matrix (``qkv``, Phi-3's ``fc_in``) and part τs name one
block of its output rows (``q_proj``, ``fc_gate``, …), which is then edited as a matrix of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from .io import LaserflowError

Spans = tuple[tuple[int, int], ...]  # [start, stop) ranges of a fused matrix's output rows


@dataclass(frozen=True)
class Target:
    """One matrix an edit changes, as W (out × in): a whole parameter, or the rows ``rows`` of a
    fused one (part ``part``); ``transposed`` when the parameter is stored in × out."""

    parameter: str
    part: str | None = None
    rows: Spans = ()
    transposed: bool = False

    @property
    def key(self) -> str:
        """The name of this matrix's factors in an SVD cache file."""
        return self.parameter if self.part is None else f"{self.parameter}[{self.part}]"


def _value(model_config: dict | object, key: str):
    return model_config.get(key) if isinstance(model_config, dict) else getattr(model_config, key, None)


def _contiguous(sizes: dict[str, int]) -> dict[str, Spans]:
    """Parts stored one after the other: part -> its single span."""
    spans, start = {}, 0
    for part, size in sizes.items():
        spans[part] = ((start, start + size),)
        start += size
    return spans


def gpt2_qkv(model_config) -> dict[str, Spans]:
    """GPT-2 ``c_attn``: q, k, v of n_embd outputs each, one after the other (``split`` in the model)."""
    width = _value(model_config, "n_embd")
    return _contiguous({"q": width, "k": width, "v": width})


def neox_qkv(model_config) -> dict[str, Spans]:
    """GPT-NeoX ``query_key_value``: per head, its q, k and v rows (the model views the output as
    heads × 3·head_size), so each part is one span per head."""
    heads = _value(model_config, "num_attention_heads")
    size = _value(model_config, "hidden_size") // heads
    return {part: tuple((head * 3 * size + index * size, head * 3 * size + (index + 1) * size) for head in range(heads))
            for index, part in enumerate(("q", "k", "v"))}


def phi3_qkv(model_config) -> dict[str, Spans]:
    """Phi-3 ``qkv_proj``: q (heads · head_dim rows), then k and v (key/value heads · head_dim each)."""
    heads = _value(model_config, "num_attention_heads")
    kv_heads = _value(model_config, "num_key_value_heads") or heads
    head_dim = _value(model_config, "head_dim") or _value(model_config, "hidden_size") // heads
    return _contiguous({"q": heads * head_dim, "k": kv_heads * head_dim, "v": kv_heads * head_dim})


def phi3_gate_up(model_config) -> dict[str, Spans]:
    """Phi-3 ``gate_up_proj``: the gate half, then the up half (``chunk(2)`` in the model)."""
    size = _value(model_config, "intermediate_size")
    return _contiguous({"gate": size, "up": size})


@dataclass(frozen=True)
class Family:
    name: str
    layer_prefix: str  # formatted with the layer number
    matrices: dict[str, str]  # τ -> parameter suffix
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group name -> τ list
    scoring: str = "next_token"  # how CounterFact-style questions are scored
    randomized_niter: int = 2  # svd_lowrank power iterations in the original code
    # Text whose one token stands for a label word: " true" (GPT-J, RoBERTa), or "true" after
    # BOS for Llama, whose SentencePiece tokenizer adds the word-start marker itself.
    label_prefix: str = " "
    # Part τ -> (the fused τ, the part), and fused τ -> its parts' output rows given the model config.
    parts: dict[str, tuple[str, str]] = field(default_factory=dict)
    layouts: dict[str, Callable[[dict | object], dict[str, Spans]]] = field(default_factory=dict)
    transposed: bool = False  # weights stored in × out (Conv1D)

    @property
    def taus(self) -> list[str]:
        return [*self.matrices, *self.parts, *self.groups]

    def members(self, tau: str) -> list[str]:
        """The single τs an edit of ``tau`` covers (a group's members, or ``tau`` itself)."""
        if tau in self.matrices or tau in self.parts:
            return [tau]
        if tau in self.groups:
            return list(self.groups[tau])
        raise LaserflowError(
            f"matrix type '{tau}' is not defined for the {self.name} family; "
            f"valid: {', '.join(self.taus)}"
        )

    def suffixes(self, tau: str) -> list[str]:
        """The parameter suffixes ``tau`` selects (a part τ selects its fused parameter)."""
        return [self.matrices[self.parts[member][0] if member in self.parts else member]
                for member in self.members(tau)]

    def parameter_names(self, tau: str, layer: int) -> list[str]:
        prefix = self.layer_prefix.format(layer=layer)
        return list(dict.fromkeys(prefix + suffix for suffix in self.suffixes(tau)))

    def matrices_of(self, tau: str, layer: int) -> list[tuple[str, str | None]]:
        """(parameter name, part of a fused matrix or None) of each matrix an edit of (τ, ℓ) changes."""
        prefix = self.layer_prefix.format(layer=layer)
        return [(prefix + self.matrices[fused], part)
                for fused, part in (self.parts.get(member, (member, None)) for member in self.members(tau))]

    def targets(self, tau: str, layer: int, model_config: dict | object) -> list[Target]:
        """The matrices an edit of (τ, ℓ) changes; parts need the model config for their rows."""
        prefix = self.layer_prefix.format(layer=layer)
        out = []
        for member in self.members(tau):
            fused, part = self.parts.get(member, (member, None))
            rows = self.layouts[fused](model_config)[part] if part else ()
            out.append(Target(prefix + self.matrices[fused], part, rows, self.transposed))
        return out

    def for_tokenizer(self, tokenizer) -> "Family":
        """This family with the label prefix its tokenizer needs. A SentencePiece tokenizer that
        adds the word-start marker itself (Llama-2, Phi-3) takes the bare word; one that folds a
        leading space into the word (Llama-3, Qwen2.5, Gemma: " the" is one token) takes " word"."""
        if self.label_prefix == " " or len(tokenizer(" the", add_special_tokens=False).input_ids) != 1:
            return self
        return replace(self, label_prefix=" ")


def _groups(attn: tuple[str, ...], mlp: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {"attn": attn, "mlp": mlp, "all": attn + mlp}


GPTJ = Family(
    name="gptj",
    layer_prefix="transformer.h.{layer}.",
    matrices={
        "k_proj": "attn.k_proj.weight",
        "q_proj": "attn.q_proj.weight",
        "v_proj": "attn.v_proj.weight",
        "out_proj": "attn.out_proj.weight",
        "fc_in": "mlp.fc_in.weight",
        "fc_out": "mlp.fc_out.weight",
    },
    groups=_groups(("k_proj", "q_proj", "v_proj", "out_proj"), ("fc_in", "fc_out")),
)

LLAMA = Family(
    name="llama",
    layer_prefix="model.layers.{layer}.",
    matrices={
        "k_proj": "self_attn.k_proj.weight",
        "q_proj": "self_attn.q_proj.weight",
        "v_proj": "self_attn.v_proj.weight",
        "out_proj": "self_attn.o_proj.weight",
        "fc_in": "mlp.gate_proj.weight",
        "fc_up": "mlp.up_proj.weight",
        "fc_out": "mlp.down_proj.weight",
    },
    groups=_groups(("k_proj", "q_proj", "v_proj", "out_proj"), ("fc_in", "fc_up", "fc_out")),
    scoring="generation",
    label_prefix="",
)

ROBERTA = Family(
    name="roberta",
    layer_prefix="roberta.encoder.layer.{layer}.",
    matrices={
        "k_proj": "attention.self.key.weight",
        "q_proj": "attention.self.query.weight",
        "v_proj": "attention.self.value.weight",
        "out_proj": "attention.output.dense.weight",
        "fc_in": "intermediate.dense.weight",
        "fc_out": "output.dense.weight",
    },
    scoring="masked",
    randomized_niter=20,
)

PHI = Family(
    name="phi",
    layer_prefix="model.layers.{layer}.",
    matrices={
        "k_proj": "self_attn.k_proj.weight",
        "q_proj": "self_attn.q_proj.weight",
        "v_proj": "self_attn.v_proj.weight",
        "out_proj": "self_attn.dense.weight",
        "fc_in": "mlp.fc1.weight",
        "fc_out": "mlp.fc2.weight",
    },
    groups=_groups(("k_proj", "q_proj", "v_proj", "out_proj"), ("fc_in", "fc_out")),
)

def _fused_family(name: str, layer_prefix: str, qkv: str, out_proj: str, fc_in: str, fc_out: str,
                  layouts: dict, parts: dict | None = None, **options) -> Family:
    """A family whose q, k and v are one fused matrix: τ ``qkv``, its parts ``q_proj``, ``k_proj``
    and ``v_proj`` (module names given without ``.weight``)."""
    return Family(
        name=name,
        layer_prefix=layer_prefix,
        matrices={"qkv": qkv + ".weight", "out_proj": out_proj + ".weight", "fc_in": fc_in + ".weight",
                  "fc_out": fc_out + ".weight"},
        groups=_groups(("qkv", "out_proj"), ("fc_in", "fc_out")),
        parts={"q_proj": ("qkv", "q"), "k_proj": ("qkv", "k"), "v_proj": ("qkv", "v")} | (parts or {}),
        layouts=layouts,
        **options,
    )


GPT2 = _fused_family("gpt2", "transformer.h.{layer}.", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj",
                     {"qkv": gpt2_qkv}, transposed=True)

GPT_NEOX = _fused_family("gpt_neox", "gpt_neox.layers.{layer}.", "attention.query_key_value", "attention.dense",
                         "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", {"qkv": neox_qkv})

PHI3 = _fused_family("phi3", "model.layers.{layer}.", "self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj",
                     "mlp.down_proj", {"qkv": phi3_qkv, "fc_in": phi3_gate_up},
                     parts={"fc_gate": ("fc_in", "gate"), "fc_up": ("fc_in", "up")},
                     label_prefix="")  # Phi-3 uses Llama-2's SentencePiece tokenizer

FAMILIES = {family.name: family for family in (GPTJ, LLAMA, ROBERTA, PHI, GPT2, GPT_NEOX, PHI3)}

# transformers `model_type` -> family. Mistral, Qwen2 (Qwen2.5), Gemma and Gemma-2 share Llama's
# layout and scoring (Llama-3 is model_type llama).
MODEL_TYPES = {
    "gptj": "gptj",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "gemma": "llama",
    "gemma2": "llama",
    "roberta": "roberta",
    "phi": "phi",
    "gpt2": "gpt2",
    "gpt_neox": "gpt_neox",
    "phi3": "phi3",
}


def family_by_name(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise LaserflowError(
            f"unknown model family '{name}'; valid: {', '.join(FAMILIES)}"
        ) from None


def detect_family(model_config: dict | object, source: str = "model") -> Family:
    """The family of a model, from its transformers config (a dict or a config object)."""
    model_type = (
        model_config.get("model_type")
        if isinstance(model_config, dict)
        else getattr(model_config, "model_type", None)
    )
    if model_type not in MODEL_TYPES:
        raise LaserflowError(
            f"{source}: architecture model_type={model_type!r} is not mapped to a LASER family; "
            f"supported model types: {', '.join(MODEL_TYPES)}"
        )
    return FAMILIES[MODEL_TYPES[model_type]]


def num_layers(model_config: dict | object) -> int:
    values = model_config if isinstance(model_config, dict) else vars(model_config)
    for key in ("num_hidden_layers", "n_layer"):
        if values.get(key) is not None:
            return int(values[key])
    raise LaserflowError("model config names no layer count (num_hidden_layers / n_layer)")
