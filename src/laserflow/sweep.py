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
    return [entry_edit(entry) for entry in entries]


def entry_edit(entry: dict) -> Edit:
    """The LASER edit of a configuration entry ``{tau, layer, rate | rho}``."""
    level = Level(rate=float(entry["rate"])) if "rate" in entry else Level(rho=float(entry["rho"]))
    return Edit("laser", entry["tau"], entry["layer"], level)


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


# ---------------------------------------------------------------- composition and analysis


def block_cells(config: dict, block: str) -> list[tuple[str, str]]:
    """The cells the ``compose`` or ``analysis`` block runs on: none when it is off; otherwise the
    block's own ``cells`` that the run evaluates (all of the run's cells without them)."""
    spec = config.get(block, {})
    if not spec.get("enabled"):
        return []
    run = cells(config)
    chosen = spec.get("cells")
    if chosen is None:
        return run
    return [(model, dataset) for model, datasets in chosen.items() for dataset in datasets if (model, dataset) in run]


@dataclass(frozen=True)
class ComposePlan:
    """One model's composition search: the τ visited at each layer, the layers in visiting order,
    and the reduction steps (fractions of the rank removed, the first 0: the unmodified matrix)."""

    taus: tuple[str, ...]
    layers: tuple[int, ...]
    steps: tuple[float, ...]

    @classmethod
    def from_config(cls, config: dict, model: str) -> "ComposePlan":
        """``compose.layers: all`` is every layer from the last to the first; a list keeps its order."""
        spec = config["compose"]
        chosen = spec["layers"]
        layers = range(model_info(config, model).layers - 1, -1, -1) if chosen == "all" else chosen
        return cls(tuple(spec["taus"]), tuple(layers), tuple(float(step) for step in spec["steps"]))

    @classmethod
    def from_dict(cls, values: dict) -> "ComposePlan":
        return cls(tuple(values["taus"]), tuple(values["layers"]), tuple(values["steps"]))

    def as_dict(self) -> dict:
        return {"taus": list(self.taus), "layers": list(self.layers), "steps": list(self.steps)}

    @property
    def matrices(self) -> list[tuple[str, int]]:
        """Every (τ, ℓ) in visiting order: layer by layer, τ in the given order at each."""
        return [(tau, layer) for layer in self.layers for tau in self.taus]

    @staticmethod
    def edit(tau: str, layer: int, reduction: float) -> Edit:
        """The LASER edit removing the fraction ``reduction`` of the rank: ρ = 1 − reduction."""
        return Edit("laser", tau, layer, Level(rho=1 - reduction))


def analysis_edit(config: dict) -> Edit | None:
    """The configuration the analysis block names for every cell; None: each cell's selected one."""
    chosen = config["analysis"]["configuration"]
    return None if chosen == "selected" else entry_edit(chosen)


def laser_matrices(config: dict, model: str, dataset: str) -> list[tuple[str, int]]:
    """The (τ, ℓ) of a cell's LASER configurations (one of them is the selected one)."""
    found = [(edit.tau, edit.layer) for edit in edits(config, model, dataset) if edit.intervention == "laser"]
    return list(dict.fromkeys(found))
