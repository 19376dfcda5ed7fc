"""The sweep grid: which (model, dataset) cells run and every configuration of a cell, in the
original's sweep order. Pure functions of a validated config; no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .edits import Edit, Level
from .families import MODEL_TYPES
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
        return ModelInfo(name, MODEL_TYPES[tiny.family], tiny.layers)
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
    return None if entries is None else [entry_edit(entry) for entry in entries]


def entry_edit(entry: dict) -> Edit:
    """The LASER edit of a config entry ``{tau, layer, rate | rho}`` (``selected``, ``export.edits``)."""
    return Edit("laser", entry["tau"], entry["layer"],
                Level(rate=float(entry["rate"])) if "rate" in entry else Level(rho=float(entry["rho"])))


def export_edits(config: dict, model: str, dataset: str) -> list[Edit] | None:
    """The edit list ``export.edits`` gives for one (model, dataset), applied in order; None when
    the export takes the cell's selected configuration instead."""
    entries = config.get("export", {}).get("edits", {}).get(model, {}).get(dataset)
    return None if entries is None else [entry_edit(entry) for entry in entries]


def edits(config: dict, model: str, dataset: str) -> list[Edit]:
    """Every single-edit configuration of one (model, dataset): the ones ``selected`` lists for it
    (artifact evaluation), otherwise the sweep grid in the original's sweep order.

    The original loops layers from the last down, then τ in the given order, then rates reversed
    (9.95 first); the first configuration wins remaining selection ties.
    """
    chosen = selected_edits(config, model, dataset)
    if chosen is not None:
        return chosen
    out = []
    for intervention in config["sweep"].get("interventions", ["laser"]):
        for layer in sorted(layers(config, model), reverse=True):
            for tau in config["sweep"]["taus"]:
                if intervention == "zero":
                    out.append(Edit(intervention, tau, layer, None))
                    continue
                for level in reversed(levels(config)):
                    out.append(Edit(intervention, tau, layer, level))
    return out
