"""Where every stage's files live: the path patterns the rules declare and the readers use.

A configuration's files are keyed by ``run_key(edit)``; ``edits_of(key)`` is its inverse, so a
target's wildcards give back the configuration it names (nothing is parsed back from paths).
"""

from __future__ import annotations

from .edits import Edit, level_label, parse_level

DOWNLOAD = "resources/downloads/{dataset}.raw"  # a URL's raw bytes (CounterFact)
HUB_DOWNLOAD = "resources/downloads/{dataset}.json"  # a hub dataset's splits
DATASET = "resources/data/{dataset}.jsonl"
MODEL = "resources/models/{model}"
MANIFEST = "resources/manifests/{model}.json"
SVD = "resources/svd/{model}/{tau}/{layer}.pt"
CELL = "results/{model}/{dataset}"
BASE = CELL + "/base.json"
RUN = CELL + "/runs/{intervention}/{tau}/{layer}/{level}.json"
SELECTION = CELL + "/selection.json"
ITEMS_SUFFIX = ".items.jsonl.gz"  # per-item records beside each summary
TABLE = "results/tables/{name}.{ext}"
CELL_FIGURE = "results/figures/{model}/{dataset}/{name}.{ext}"
FIGURE = "results/figures/{name}.{ext}"
EXPORT = "export/{model}/{dataset}"  # an exported model (laserflow.export); asked for by name
EXPORT_RECORD = "laserflow_export.json"  # in an export directory: what it holds; marks it as ours


def items(summary: str) -> str:
    """The per-item records file beside a summary pattern or path (``x.json`` -> ``x.items.jsonl.gz``)."""
    return summary.removesuffix(".json") + ITEMS_SUFFIX


def log(pattern: str) -> str:
    """The rule log mirroring a result pattern: ``results/a/b.json`` -> ``logs/a/b.log``."""
    stem = pattern.removeprefix("results/").removeprefix("resources/")
    return "logs/" + stem.rsplit(".", 1)[0] + ".log"


def run_key(edit: Edit) -> dict:
    """The wildcard values of one configuration's target."""
    return {"intervention": edit.intervention, "tau": edit.tau, "layer": edit.layer, "level": level_label(edit.level)}


def edits_of(key) -> list[Edit]:
    """The configuration a target's wildcards name (``run_key``'s inverse); none for the base target."""
    values = key if isinstance(key, dict) else dict(key.items())
    if "intervention" not in values:
        return []
    return [Edit(values["intervention"], values["tau"], int(values["layer"]), parse_level(values["level"]))]


def run_file(model: str, dataset: str, edit: Edit) -> str:
    return RUN.format(model=model, dataset=dataset, **run_key(edit))


def cell_file(pattern: str, model: str, dataset: str) -> str:
    return pattern.format(model=model, dataset=dataset)
