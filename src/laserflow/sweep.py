"""The sweep grid: which (model, dataset) cells run and every configuration of a cell, in the
original's sweep order. Pure functions of a validated config; no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .edits import Composite, Edit, Level
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


def grid(config: dict, model: str) -> dict:
    """The sweep grid of one model: ``sweep`` updated by ``models.<model>.sweep``; an override
    naming rates or rhos replaces both of the global ones."""
    override = config["models"][model].get("sweep", {})
    merged = dict(config["sweep"])
    if "rates" in override or "rhos" in override:
        merged.pop("rates", None)
        merged.pop("rhos", None)
    return merged | override


def grid_key(config: dict, model: str, key: str) -> str:
    """Where a model's grid value comes from, for messages: ``models.<m>.sweep.<key>`` or ``sweep.<key>``."""
    return f"models.{model}.sweep.{key}" if key in config["models"][model].get("sweep", {}) else f"sweep.{key}"


def grid_levels(chosen: dict) -> list[Level]:
    """The levels of a grid (``sweep`` or a model's): its rates or its rhos."""
    if "rates" in chosen:
        return [Level(rate=float(rate)) for rate in chosen["rates"]]
    return [Level(rho=float(rho)) for rho in chosen["rhos"]]


def levels(config: dict, model: str) -> list[Level]:
    return grid_levels(grid(config, model))


def layers(config: dict, model: str) -> list[int]:
    chosen = grid(config, model).get("layers", "all")
    return list(range(model_info(config, model).layers)) if chosen == "all" else list(chosen)


def entry_edit(entry: dict) -> Edit:
    """One edit of a ``selected`` entry: ``intervention`` (default laser), τ, ℓ and rate or rho."""
    level = (Level(rate=float(entry["rate"])) if "rate" in entry
             else Level(rho=float(entry["rho"])) if "rho" in entry else None)
    return Edit(entry.get("intervention", "laser"), entry["tau"], entry["layer"], level)


def entry_configuration(entry: dict) -> Edit | Composite:
    """A ``selected`` entry's configuration: one edit, or a composite (``composite``: its edits)."""
    if "composite" in entry:
        return Composite(tuple(entry_edit(part) for part in entry["composite"]))
    return entry_edit(entry)


def selected_edits(config: dict, model: str, dataset: str) -> list[Edit | Composite] | None:
    """The configurations ``selected`` lists for one (model, dataset), in its order; None if none."""
    entries = config.get("selected", {}).get(model, {}).get(dataset)
    return None if entries is None else [entry_configuration(entry) for entry in entries]


def export_edits(config: dict, model: str, dataset: str) -> list[Edit] | None:
    """The edit list ``export.edits`` gives for one (model, dataset), applied in order; None when
    the export takes the cell's selected configuration instead."""
    entries = config.get("export", {}).get("edits", {}).get(model, {}).get(dataset)
    return None if entries is None else [entry_edit(entry) for entry in entries]


def edits(config: dict, model: str, dataset: str) -> list[Edit | Composite]:
    """Every configuration of one (model, dataset): the ones ``selected`` lists for it (artifact
    evaluation), otherwise the model's sweep grid in the original's sweep order.

    The original loops layers from the last down, then τ in the given order, then rates reversed
    (9.95 first); the first configuration wins remaining selection ties.
    """
    chosen = selected_edits(config, model, dataset)
    if chosen is not None:
        return chosen
    keys = layer_keys(config, model)
    return [Edit(intervention, tau, layer, level)
            for intervention in grid(config, model).get("interventions", ["laser"])
            for layer in sorted(layers(config, model), reverse=True)
            for key_intervention, tau, level in keys if key_intervention == intervention]


def layer_keys(config: dict, model: str | None = None) -> list[tuple[str, str, Level | None]]:
    """(intervention, τ, level) of every configuration of one layer of a model's grid (the global
    grid without a model), in sweep order."""
    chosen = grid(config, model) if model else config["sweep"]
    out = []
    for intervention in chosen.get("interventions", ["laser"]):
        for tau in chosen["taus"]:
            levels_of = [None] if intervention == "zero" else list(reversed(grid_levels(chosen)))
            out += [(intervention, tau, level) for level in levels_of]
    return out


def is_search(config: dict, model: str, dataset: str) -> bool:
    """Whether a cell searches the grid (not a ``selected`` list of configurations to report)."""
    return selected_edits(config, model, dataset) is None


def part(config: dict, model: str, dataset: str) -> str:
    """The items a cell's configurations score: ``validation`` for a search under ``sweep.score:
    validation`` (its chosen configuration is then scored on every item by its own job), ``all``
    otherwise."""
    return "validation" if config["sweep"]["score"] == "validation" and is_search(config, model, dataset) else "all"


def grouped(config: dict, model: str, dataset: str) -> bool:
    """Whether a cell's configurations run as layer groups: ``sweep.group: layer``, a search, and
    the model's per-layer configurations those of the global grid (a model whose own
    ``models.<m>.sweep`` changes them runs one job per configuration)."""
    return (config["sweep"]["group"] == "layer" and is_search(config, model, dataset)
            and layer_keys(config, model) == layer_keys(config))


def is_candidate(configuration: Edit | Composite) -> bool:
    """Selection compares single LASER edits only; zero, prune and composites are evaluated beside them."""
    return configuration.intervention == "laser"


def selected_cells(config: dict) -> list[tuple[str, str]]:
    """The cells with at least one selection candidate: they get a selection and a Table 1 row."""
    return [cell for cell in cells(config) if any(map(is_candidate, edits(config, *cell)))]


def robustness_cells(config: dict) -> list[tuple[str, str]]:
    """The cells whose selected configuration is redrawn: none when ``robustness.enabled`` is off,
    otherwise the selected cells that ``robustness.cells`` (model -> datasets) lists, or all of
    them. A listed cell that does not run or has no selection is skipped, so that a layered
    config restricting ``cells`` needs no change here."""
    robustness = config.get("robustness", {})
    if not robustness.get("enabled", False):
        return []
    chosen = robustness.get("cells")
    listed = None if chosen is None else {(model, dataset) for model, datasets in chosen.items() for dataset in datasets}
    return [cell for cell in selected_cells(config) if listed is None or cell in listed]
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
