"""Model families: the original code's matrix-type (τ) to parameter-name mapping per architecture.

A parameter is selected for (τ, ℓ) when its name starts with the family's layer prefix for ℓ and
ends with one of τ's suffixes (as in the original ``*_laser.py`` files).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .io import LaserflowError


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

    @property
    def taus(self) -> list[str]:
        return [*self.matrices, *self.groups]

    def suffixes(self, tau: str) -> list[str]:
        if tau in self.matrices:
            return [self.matrices[tau]]
        if tau in self.groups:
            return [self.matrices[member] for member in self.groups[tau]]
        raise LaserflowError(
            f"matrix type '{tau}' is not defined for the {self.name} family; "
            f"valid: {', '.join(self.taus)}"
        )

    def parameter_names(self, tau: str, layer: int) -> list[str]:
        prefix = self.layer_prefix.format(layer=layer)
        return [prefix + suffix for suffix in self.suffixes(tau)]


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

FAMILIES = {family.name: family for family in (GPTJ, LLAMA, ROBERTA, PHI)}

# transformers `model_type` -> family. Mistral and Qwen2 share Llama's layout and scoring.
MODEL_TYPES = {
    "gptj": "gptj",
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "roberta": "roberta",
    "phi": "phi",
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
