"""Matrix shapes of a configured model before its jobs run, where they can be known: from a tiny
model's spec, from the config.json of a ``path:`` model or of a hub model's snapshot once it
exists, or from the published sizes of a known checkpoint. No torch.

Used to warn, when a config is checked, about levels that keep rank 0 of a matrix (such a level
writes the zero matrix, as the original does). A hub model that is neither snapshotted nor a
known checkpoint, or a ``path:`` whose directory does not exist yet, has unknown shapes: its
rank-0 levels show only in the job logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .families import Family
from .io import LaserflowError, read_json
from .paths import MODEL
from .tiny import tiny_spec


@dataclass(frozen=True)
class Widths:
    """The sizes a model's matrix shapes follow from."""

    hidden: int
    intermediate: int
    attention: int  # rows of the query projection (heads × head size)
    kv: int  # rows of the key and value projections (fewer than attention with grouped-query attention)


# Published sizes of the checkpoints the paper uses, by hub id.
KNOWN_CHECKPOINTS = {
    "EleutherAI/gpt-j-6B": Widths(hidden=4096, intermediate=16384, attention=4096, kv=4096),
    "meta-llama/Llama-2-7b-hf": Widths(hidden=4096, intermediate=11008, attention=4096, kv=4096),
    "roberta-base": Widths(hidden=768, intermediate=3072, attention=768, kv=768),
    "microsoft/phi-1_5": Widths(hidden=2048, intermediate=8192, attention=2048, kv=2048),
}

# τ -> (rows, columns) of its weight (a torch Linear's out × in), as Widths fields.
MATRIX_WIDTHS = {
    "q_proj": ("attention", "hidden"),
    "k_proj": ("kv", "hidden"),
    "v_proj": ("kv", "hidden"),
    "out_proj": ("hidden", "attention"),
    "fc_in": ("intermediate", "hidden"),
    "fc_up": ("intermediate", "hidden"),
    "fc_out": ("hidden", "intermediate"),
}


def widths_of_model_config(values: dict) -> Widths:
    """Widths from a transformers config.json (GPT-J's n_embd / n_inner, or hidden_size, …)."""
    hidden = values.get("hidden_size") or values["n_embd"]
    heads = values.get("num_attention_heads") or values["n_head"]
    head_size = values.get("head_dim") or hidden // heads
    return Widths(hidden=hidden, intermediate=values.get("intermediate_size") or values.get("n_inner") or 4 * hidden,
                  attention=heads * head_size, kv=(values.get("num_key_value_heads") or heads) * head_size)


def model_widths(config: dict, model: str, root: str | Path = ".") -> tuple[Widths | None, str]:
    """A configured model's widths and where they come from, or None and why they are unknown.

    ``root`` is the workflow's directory, against which ``path:`` and snapshots are found.
    """
    spec = config["models"][model]
    if "tiny" in spec:
        tiny = tiny_spec(spec)
        return Widths(tiny.hidden, tiny.intermediate, tiny.hidden, tiny.hidden), "its tiny spec"
    directory = Path(root) / (spec["path"] if "path" in spec else MODEL.format(model=model))
    model_config = directory / "config.json"
    if model_config.is_file():
        try:
            return widths_of_model_config(read_json(model_config)), str(directory)
        except (KeyError, TypeError, AttributeError):
            raise LaserflowError(f"{model_config}: no hidden size and head count "
                                 f"(hidden_size or n_embd, num_attention_heads or n_head)") from None
    if spec.get("hub") in KNOWN_CHECKPOINTS:
        return KNOWN_CHECKPOINTS[spec["hub"]], f"the published sizes of {spec['hub']}"
    if "path" in spec:
        return None, f"{directory} has no config.json yet"
    return None, f"{spec['hub']} is not a known checkpoint and {directory} has no snapshot yet"


def matrix_shapes(family: Family, widths: Widths, tau: str) -> dict[str, tuple[int, int]]:
    """The shape of each matrix type τ covers (a group covers several), keyed by matrix type."""
    members = family.groups.get(tau, (tau,))
    return {member: (getattr(widths, MATRIX_WIDTHS[member][0]), getattr(widths, MATRIX_WIDTHS[member][1]))
            for member in members}
