"""Where every stage's files live: the path patterns the rules declare and the readers use.

A configuration's files are keyed by ``run_key(configuration)``; ``edits_of(key)`` is its
inverse, so a target's wildcards give back the configuration it names (nothing is parsed back
from paths). A single edit's key is (intervention, τ, ℓ, level); a composite's is its label
(``runs/composite/laser-fc_in-2-rate9.9+zero-fc_out-1-none.json``), which names every edit.
"""

from __future__ import annotations

from .edits import Composite, Edit, level_label, parse_level

DOWNLOAD = "resources/downloads/{dataset}.raw"  # a URL's raw bytes (CounterFact)
HUB_DOWNLOAD = "resources/downloads/{dataset}.json"  # a hub dataset's splits
DATASET = "resources/data/{dataset}.jsonl"
DATASET_SOURCE = "resources/data/{dataset}.source.json"  # the raw source and the sha256 of each file read
MODEL = "resources/models/{model}"
MANIFEST = "resources/manifests/{model}.json"
SVD = "resources/svd/{model}/{tau}/{layer}.pt"
CELL = "results/{model}/{dataset}"
BASE = CELL + "/base.json"
RUN = CELL + "/runs/{intervention}/{tau}/{layer}/{level}.json"
COMPOSITE_RUN = CELL + "/runs/composite/{composite}.json"
SELECTION = CELL + "/selection.json"
CHOSEN = CELL + "/chosen.json"  # the chosen configuration scored on every item (sweep.score: validation)
ROBUSTNESS = CELL + "/robustness.json"  # the selected configuration under the exact SVD and K randomized draws
COMPOSE = CELL + "/compose/compose.json"  # the composite's summary (its records beside it)
COMPOSE_STEPS = CELL + "/compose/steps.jsonl"  # every step of the greedy search
ANALYSIS = CELL + "/analysis/analysis.json"  # per-item predictions beside it
ITEMS_SUFFIX = ".items.jsonl.gz"  # per-item records beside each summary
TABLE = "results/tables/{name}.{ext}"
CELL_TABLE = "results/tables/{model}/{dataset}/{name}.{ext}"
CELL_FIGURE = "results/figures/{model}/{dataset}/{name}.{ext}"
FIGURE = "results/figures/{name}.{ext}"
EXPORT = "export/{model}/{dataset}"  # an exported model (laserflow.export); asked for by name
EXPORT_RECORD = "laserflow_export.json"  # in an export directory: what it holds; marks it as ours


def items(summary: str) -> str:
    """The per-item records file beside a summary pattern or path (``x.json`` -> ``x.items.jsonl.gz``)."""
    return summary.removesuffix(".json") + ITEMS_SUFFIX


def svd_record(factors: str) -> str:
    """The record beside an SVD factors pattern or path (``1.pt`` -> ``1.json``)."""
    return factors.removesuffix(".pt") + ".json"


def log(pattern: str) -> str:
    """The rule log mirroring a result pattern: ``results/a/b.json`` -> ``logs/a/b.log``."""
    stem = pattern.removeprefix("results/").removeprefix("resources/")
    return "logs/" + stem.rsplit(".", 1)[0] + ".log"


def run_key(configuration: Edit | Composite) -> dict:
    """The wildcard values of one configuration's target."""
    if isinstance(configuration, Composite):
        return {"composite": configuration.label}
    edit = configuration
    return {"intervention": edit.intervention, "tau": edit.tau, "layer": edit.layer, "level": level_label(edit.level)}


def edits_of(key) -> list[Edit]:
    """The edits a target's wildcards name (``run_key``'s inverse); none for the base target."""
    values = key if isinstance(key, dict) else dict(key.items())
    if "composite" in values:
        return list(Composite.parse(values["composite"]).edits)
    if "intervention" not in values:
        return []
    return [Edit(values["intervention"], values["tau"], int(values["layer"]), parse_level(values["level"]))]


def svd_files(model: str, edits: list[Edit]) -> list[str]:
    """The cached SVDs the LASER edits among ``edits`` truncate, sorted."""
    return sorted({SVD.format(model=model, tau=edit.tau, layer=edit.layer)
                   for edit in edits if edit.intervention == "laser"})


def run_file(model: str, dataset: str, configuration: Edit | Composite) -> str:
    pattern = COMPOSITE_RUN if isinstance(configuration, Composite) else RUN
    return pattern.format(model=model, dataset=dataset, **run_key(configuration))


def cell_file(pattern: str, model: str, dataset: str) -> str:
    return pattern.format(model=model, dataset=dataset)


def group_files(pattern: str, keys) -> list[str]:
    """A configuration file pattern (``RUN`` or its items) for each (intervention, τ, level) of a
    layer group, keeping ``{cell}`` (model/dataset as one wildcard) and ``{layer}``."""
    pattern = pattern.replace(CELL, "results/{cell}")
    return [pattern.replace("{intervention}", intervention).replace("{tau}", tau)
            .replace("{level}", level_label(level)) for intervention, tau, level in keys]
def cell_pattern(pattern: str, name: str, ext: str) -> str:
    """A per-cell table or figure pattern (``CELL_TABLE``, ``CELL_FIGURE``) with its name and
    extension filled in, ``{model}`` and ``{dataset}`` left as wildcards."""
    return pattern.format(model="{model}", dataset="{dataset}", name=name, ext=ext)
