"""The sweep grid: which (model, dataset) cells run and every configuration of a cell, in the
original's sweep order. Pure functions of a validated config; no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .edits import Edit, Level
from .tiny import tiny_spec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    layers: int


def model_info(config: dict, name: str) -> ModelInfo:
    spec = config["models"][name]
    if "tiny" in spec:
        tiny = tiny_spec(spec)
        return ModelInfo(name, tiny.family, tiny.layers)
    return ModelInfo(name, spec["family"], spec["layers"])


def cells(config: dict) -> list[tuple[str, str]]:
    """The (model, dataset) pairs that run: ``cells`` where given (model -> datasets), otherwise
    every configured model on every configured dataset."""
    chosen = config.get("cells")
    if chosen is None:
        return [(model, dataset) for model in config["models"] for dataset in config["datasets"]]
    return [(model, dataset) for model, datasets in chosen.items() for dataset in datasets]


def levels(config: dict) -> list[Level]:
    sweep = config["sweep"]
    if "rates" in sweep:
        return [Level(rate=float(rate)) for rate in sweep["rates"]]
    return [Level(rho=float(rho)) for rho in sweep["rhos"]]


def layers(config: dict, model: str) -> list[int]:
    chosen = config["sweep"].get("layers", "all")
    return list(range(model_info(config, model).layers)) if chosen == "all" else list(chosen)


def selected_edits(config: dict, model: str, dataset: str) -> list[Edit] | None:
    """The configurations ``selected`` lists for one (model, dataset), in its order; None if none."""
    entries = config.get("selected", {}).get(model, {}).get(dataset)
    if entries is None:
        return None
    return [Edit("laser", entry["tau"], entry["layer"],
                 Level(rate=float(entry["rate"])) if "rate" in entry else Level(rho=float(entry["rho"])))
            for entry in entries]


def edits(config: dict, model: str, dataset: str) -> list[Edit]:
    """Every single-edit configuration of one (model, dataset): the ones ``selected`` lists for it
    (artifact evaluation), otherwise the sweep grid in the original's sweep order.

    The original loops layers from the last down, then τ in the given order, then rates reversed
    (9.95 first); the first configuration wins remaining selection ties.
    """
    chosen = selected_edits(config, model, dataset)
    if chosen is not None:
        return chosen
    keys = layer_keys(config)
    return [Edit(intervention, tau, layer, level)
            for intervention in config["sweep"].get("interventions", ["laser"])
            for layer in sorted(layers(config, model), reverse=True)
            for key_intervention, tau, level in keys if key_intervention == intervention]

def is_search(config: dict, model: str, dataset: str) -> bool:
    """Whether a cell searches the grid (not a ``selected`` list of configurations to report)."""
    return selected_edits(config, model, dataset) is None


def part(config: dict, model: str, dataset: str) -> str:
    """The items a cell's configurations score: ``validation`` for a search under ``sweep.score:
    validation`` (its chosen configuration is then scored on every item by its own job), ``all``
    otherwise."""
    return "validation" if config["sweep"]["score"] == "validation" and is_search(config, model, dataset) else "all"


def grouped(config: dict, model: str, dataset: str) -> bool:
    """Whether a cell's configurations run as layer groups (``sweep.group: layer``, a search)."""
    return config["sweep"]["group"] == "layer" and is_search(config, model, dataset)


def layer_keys(config: dict) -> list[tuple[str, str, Level | None]]:
    """(intervention, τ, level) of every configuration of one layer of the grid, in sweep order."""
    out = []
    for intervention in config["sweep"].get("interventions", ["laser"]):
        for tau in config["sweep"]["taus"]:
            levels_of = [None] if intervention == "zero" else list(reversed(levels(config)))
            out += [(intervention, tau, level) for level in levels_of]
    return out
