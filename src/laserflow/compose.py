"""Greedy composition of LASER edits across layers, on the validation part: the algorithm the
original's composition script intends.

Start from the unmodified model and visit the matrices (τ, ℓ) in the plan's order (layers from
the last to the first by default, the τ list at each layer). At each, raise the fraction of the
rank removed step by step (0 → 0.45 → 0.9 → 0.94 → 0.98 by default; kept ρ = 1 − step) while the
candidate improves on the best composite so far (``ACCEPT_RULE``); keep the last accepted step,
revert the rejected one, and go on to the next matrix. A step that lowers validation accuracy is
always rejected: the original's loop condition is always true and its revert a no-op, so it
pushes every layer to the largest step.

Each candidate is one list of ``Edit``s applied together to the original weights: the weights
every earlier candidate touched are restored exactly (``laser.restore_weights``) before it is
applied, and each LASER edit truncates the matrix's cached exact SVD (the ``svd`` rule's files).
After the search the final composite scores the test part once.

Candidates are scored with full forward passes through ``scoring.score_items``. The layers below
the one being tuned are unchanged, so the hidden states entering it are the same for every step
at that layer; reusing them (the sweep's prefix reuse, ``laserflow.forward``) plugs in at
``CompositeScorer.__call__``, the only place a candidate is scored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from tqdm.auto import tqdm

from .edits import Edit
from .evaluate import load_job, provenance
from .io import LaserflowError, write_json, write_jsonl
from .laser import apply_edits, restore_weights
from .paths import items as items_file
from .records import read_selections
from .scoring import describe_scoring, score_items
from .selection import improves, split_metrics, validation_size
from .settings import EvaluationSettings
from .svd import load_svd_cache
from .sweep import ComposePlan

log = logging.getLogger(__name__)

ACCEPT_RULE = ("a step is kept when its validation accuracy is higher than the best composite's so far, "
               "or equal with a strictly lower validation log-loss; otherwise it is reverted and the "
               "search moves to the next matrix")


@dataclass(frozen=True)
class Scored:
    """A candidate's validation metrics (n, acc, logloss) and its per-item records."""

    val: dict
    records: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One evaluated candidate: the matrix whose reduction it raised (None for the unmodified
    start), that reduction, the whole composite and whether it was kept."""

    number: int
    matrix: tuple[str, int] | None
    reduction: float
    edits: list[Edit]
    val: dict
    accepted: bool

    def describe(self) -> dict:
        tau, layer = self.matrix or (None, None)
        return {"step": self.number, "tau": tau, "layer": layer, "reduction": self.reduction,
                "edits": [edit.describe() for edit in self.edits], "val": self.val, "accepted": self.accepted}


@dataclass(frozen=True)
class Composition:
    """Every step in order, the final composite and its validation records."""

    steps: list[Step]
    edits: list[Edit]
    val_records: list[dict]


def greedy(plan: ComposePlan, evaluate: Callable[[list[Edit]], Scored], show_progress: bool = True) -> Composition:
    """The greedy search of the module docstring; ``evaluate`` scores a composite (a list of
    edits, none for the unmodified model) on the validation part."""
    reductions: dict[tuple[str, int], float] = {}  # matrix -> kept reduction, in visiting order
    best = evaluate([])
    steps = [Step(0, None, 0.0, [], best.val, True)]
    kept_edits: list[Edit] = []
    bar = tqdm(total=1 + len(plan.matrices) * (len(plan.steps) - 1), desc="composing (at most)",
               mininterval=2.0, disable=not show_progress)
    bar.update(1)
    for matrix in plan.matrices:
        for reduction in plan.steps[1:]:
            candidate = reductions | {matrix: reduction}
            edits = [plan.edit(tau, layer, value) for (tau, layer), value in candidate.items()]
            scored = evaluate(edits)
            accepted = improves(scored.val, best.val)
            steps.append(Step(len(steps), matrix, reduction, edits, scored.val, accepted))
            bar.update(1)
            log.info("step %d: %s layer %d, %g removed: val acc %.2f (loss %.4f), %s", len(steps) - 1, *matrix,
                     reduction, scored.val["acc"], scored.val["logloss"], "kept" if accepted else "reverted")
            if not accepted:
                break
            reductions, best, kept_edits = candidate, scored, edits
    bar.close()
    return Composition(steps, kept_edits, best.records)


class CompositeScorer:
    """Scores composites on fixed items: restores every weight an earlier composite touched,
    applies the new one from the cached SVD factors, and scores."""

    def __init__(self, model, tokenizer, family, items, options, dataset, factors):
        self.model, self.tokenizer, self.family = model, tokenizer, family
        self.items, self.options, self.dataset, self.factors = items, options, dataset, factors
        self.originals: dict = {}  # parameter name -> its original value

    def apply(self, edits: list[Edit]) -> None:
        """The original weights with ``edits`` applied together."""
        restore_weights(self.model, self.originals)
        for name, value in apply_edits(self.model, self.family, edits, self.factors).items():
            self.originals.setdefault(name, value)

    def __call__(self, edits: list[Edit]) -> Scored:
        self.apply(edits)
        records = score_items(self.model, self.tokenizer, self.family, self.items, self.options, dataset=self.dataset)
        return Scored(split_metrics(records, len(records))["val"], records)


@dataclass(frozen=True)
class ComposePaths:
    """The files of one composition job."""

    model: str
    dataset: str
    manifest: str | None
    selection: str
    svd: tuple[str, ...]
    steps: str
    summary: str
    records: str
    chosen: str | None = None  # the chosen configuration scored on every item (a validation-only search)
    source_record: str | None = None  # the dataset's raw source and file hashes


def run_composition(settings: EvaluationSettings, plan: ComposePlan, paths: ComposePaths) -> dict:
    """The greedy search on the validation part, then the final composite on the test part; writes
    every step, the composite's per-item records and the summary beside the cell's base and best
    single-layer LASER."""
    started = time.perf_counter()
    (selection,) = read_selections([paths.selection], [paths.chosen] if paths.chosen else [])
    items, model, tokenizer, family = load_job(settings, paths.model, paths.dataset, paths.manifest)
    scoring = settings.scoring
    n_val = validation_size(len(items), settings.val_fraction)
    if n_val == 0:
        raise LaserflowError(f"{paths.dataset}: no validation items ({len(items)} items, "
                             f"val_fraction {settings.val_fraction}) to compose on")
    if selection["n_val"] != n_val:
        raise LaserflowError(f"{paths.selection}: selected on {selection['n_val']} validation items; "
                             f"composition validates on {n_val}")
    factors = load_svd_cache(list(paths.svd))
    scorer = CompositeScorer(model, tokenizer, family, items[:n_val], scoring, settings.dataset, factors)
    loaded = time.perf_counter()
    log.info("%s on %s: composing %d matrices x %d steps on %d validation items", settings.model, settings.dataset,
             len(plan.matrices), len(plan.steps) - 1, n_val)
    composition = greedy(plan, scorer, scoring.show_progress)
    searched = time.perf_counter()
    scorer.apply(composition.edits)
    records = composition.val_records + score_items(model, tokenizer, family, items[n_val:], scoring,
                                                    dataset=settings.dataset)
    metrics = split_metrics(records, n_val)
    log.info("composite of %d edits: val acc %.2f (loss %.4f), test acc %.2f (loss %.4f)", len(composition.edits),
             metrics["val"]["acc"], metrics["val"]["logloss"], metrics["test"]["acc"], metrics["test"]["logloss"])
    summary = {
        "model": settings.model,
        "dataset": settings.dataset,
        "family": family.name,
        "rule": ACCEPT_RULE,
        "plan": plan.as_dict(),
        "svd": {"mode": "exact"},
        "scoring": describe_scoring(scoring, family, tokenizer, settings.dataset, items[0],
                                    next(model.parameters()).device),
        "n_items": len(records),
        "n_val": n_val,
        "evaluations": len(composition.steps),
        "edits": [edit.describe() for edit in composition.edits],
        "base": {"val": selection["base"]["val"], "test": selection["base"]["test"],
                 "items_file": items_file(selection["files"]["base"])},
        "laser": {"edit": selection["chosen"], "val": selection["laser"]["val"], "test": selection["laser"]["test"],
                  "items_file": items_file(selection["files"]["chosen"])},
        "composite": {"val": metrics["val"], "test": metrics["test"], "items_file": str(paths.records)},
        "files": {"steps": str(paths.steps), "selection": str(paths.selection)},
        "provenance": provenance(settings, paths, model, list(paths.svd)),
        "timing": {
            "load_seconds": round(loaded - started, 3),
            "search_seconds": round(searched - loaded, 3),
            "seconds_per_validation_pass": round((searched - loaded) / len(composition.steps), 3),
            "test_seconds": round(time.perf_counter() - searched, 3),
        },
    }
    write_jsonl(paths.steps, [step.describe() for step in composition.steps])
    write_jsonl(paths.records, records)
    write_json(paths.summary, summary)
    return summary


def run_job(job: dict) -> dict:
    """One composition job as plain values (``settings``, ``plan`` and ``paths``: the
    ``ComposePaths`` fields), e.g. sent through the worker."""
    return run_composition(EvaluationSettings.from_dict(job["settings"]), ComposePlan.from_dict(job["plan"]),
                           ComposePaths(**job["paths"] | {"svd": tuple(job["paths"]["svd"])}))
