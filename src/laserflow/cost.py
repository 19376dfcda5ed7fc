"""What a search will cost before it runs: jobs and estimated model FLOPs of a config, with one
job per configuration scoring every item and with validation-only layer groups.

``python -m laserflow.cost configs/paper.yaml`` (several files are layered as Snakemake layers
them). The estimate counts layer-token passes (one transformer layer applied to one token
position, 2 × the layer's parameters in FLOPs) of the scoring and generation passes:

- items: the processed dataset if it exists, else the raw local file, else the dataset's known
  size (``laserflow.data.catalog``, or an estimate where it is not known exactly);
- tokens per row: measured on those items (1.3 tokens per word of prompt and answer) when they
  can be read, else a typical prompt length per dataset;
- rows per item by how the dataset is scored: one (next token, labels, one mask), two (RoBERTa's
  mask fill and loss rows); BIG-bench choices scored as sequences: the prompt once and each
  choice after it (``evaluation.shared_prompt``, causal models) or prompt + choice per choice;
  plus the generated tokens for generation;
- a layer group runs the layers below its layer once per batch and the rest once per
  configuration; generation is never shared.

Attention's quadratic cost, padding and the language-model head are left out, so it is a
comparison of the two modes more than a forecast of seconds.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .data.catalog import dataset_info
from .io import LaserflowError, read_jsonl
from .paths import DATASET
from .resources import model_parameters
from .selection import validation_size
from .sweep import cells, edits, grouped, model_info, part

TOKENS_PER_WORD = 1.3
TYPICAL_TOKENS = {"counterfact": 12, "hotpotqa": 30, "fever": 30, "bios_gender": 90, "bios_profession": 90,
                  "truthfulqa": 35, "bigbench_epistemic": 70, "bigbench_wikidata": 10}
# Sizes of the datasets the catalog knows no exact size of: HotPotQA's upper bound (the answer
# filter keeps fewer), WikidataQA from BIG-bench's task.json, Bios Profession about 19k.
ESTIMATED_ITEMS = {"hotpotqa": 14_810, "bigbench_wikidata": 18_812, "bios_profession": 19_000}


@dataclass(frozen=True)
class CellCost:
    model: str
    dataset: str
    configurations: int
    layer_groups: int
    each_flops: float  # one job per configuration, every item
    grouped_flops: float  # this config's own modes
    search: bool


def dataset_items(config: dict, dataset: str) -> list[dict] | int:
    """The processed items where they can be read, otherwise the known item count."""
    processed = Path(DATASET.format(dataset=dataset))
    if processed.exists():
        return read_jsonl(processed)
    spec = config["datasets"][dataset]
    if "local" in spec and os.path.isfile(spec["local"]):
        from .data.prepare import raw_items

        return raw_items(dataset, spec["local"])
    return spec.get("expected_items", dataset_info(dataset).expected_items or ESTIMATED_ITEMS[dataset])


def choice_tokens(choices: tuple[str, ...]) -> float:
    """Estimated tokens of the choices scored after a prompt (hyphenated parts counted as words)."""
    return sum(TOKENS_PER_WORD * len(re.split(r"[\s-]+", choice)) for choice in choices)


def scored_and_generated(config: dict, model: str, dataset: str, tokens: float) -> tuple[float, int]:
    """Tokens of the scoring rows per item (``tokens`` per prompt and answer), and generated tokens
    per item."""
    info, family = dataset_info(dataset), model_info(config, model).family
    new_tokens = config["evaluation"].get("max_new_tokens") or info.max_new_tokens
    if family == "roberta":
        return (2 if info.task == "open" or info.name == "bigbench_epistemic" else 1) * tokens, 0
    if info.task == "open" or (info.task == "fact" and family == "llama"):
        return tokens, new_tokens
    if info.name == "bigbench_epistemic":  # prompt + " " + choice per choice, or the prompt once
        prompts = 1 if config["evaluation"]["shared_prompt"] else len(info.choices)
        return prompts * tokens + choice_tokens(info.choices), 0
    return tokens, 0


def cell_cost(config: dict, model: str, dataset: str) -> CellCost:
    items = dataset_items(config, dataset)
    count = items if isinstance(items, int) else len(items)
    if isinstance(items, int):
        tokens = TYPICAL_TOKENS[dataset]
    else:
        words = sum(len((item.get("question", "") + " " + str(item.get("answer", ""))).split()) for item in items)
        tokens = TOKENS_PER_WORD * words / max(1, count)
    row_tokens, generated = scored_and_generated(config, model, dataset, tokens)
    layers = model_info(config, model).layers
    flops_per_layer_token = 2 * model_parameters(config, model) / layers
    n_val = validation_size(count, config["selection"]["val_fraction"])

    def passes(n_items: int, shared: int, states: int) -> float:
        """Layer-token passes of ``states`` weight states sharing the layers below ``shared``."""
        scoring = n_items * row_tokens * (shared + states * (layers - shared))
        return scoring + states * n_items * layers * (tokens + generated) * bool(generated)

    configurations = edits(config, model, dataset)
    base = passes(count, 0, 1)
    each = base + sum(passes(count, 0, 1) for _ in configurations)
    search = part(config, model, dataset) == "validation"
    scored = n_val if search else count
    if grouped(config, model, dataset):
        groups: dict[int, int] = {}
        for edit in configurations:
            groups[edit.layer] = groups.get(edit.layer, 0) + 1
        own = base + sum(passes(scored, layer, size) for layer, size in groups.items())
    else:
        groups = {}
        own = base + sum(passes(scored, 0, 1) for _ in configurations)
    own += passes(count, 0, 1) if search else 0  # the chosen configuration on every item
    return CellCost(model, dataset, len(configurations), len(groups), each * flops_per_layer_token,
                    own * flops_per_layer_token, search)


def report(config: dict) -> str:
    """A table of jobs and estimated FLOPs per cell and in total, in both modes."""
    costs = [cell_cost(config, model, dataset) for model, dataset in cells(config)]
    sweep = config["sweep"]
    lines = [f"{'model':<14} {'dataset':<20} {'jobs (each)':>11} {'jobs (this)':>11} "
             f"{'PFLOP (each)':>13} {'PFLOP (this)':>13} {'ratio':>6}"]
    for cost in costs:
        jobs = (cost.layer_groups or cost.configurations) + 1 + cost.search
        lines.append(f"{cost.model:<14} {cost.dataset:<20} {cost.configurations + 1:>11} {jobs:>11} "
                     f"{cost.each_flops / 1e15:>13.4g} {cost.grouped_flops / 1e15:>13.4g} "
                     f"{cost.each_flops / cost.grouped_flops:>6.1f}")
    each_jobs = sum(cost.configurations + 1 for cost in costs)
    own_jobs = sum((cost.layer_groups or cost.configurations) + 1 + cost.search for cost in costs)
    each, own = sum(cost.each_flops for cost in costs), sum(cost.grouped_flops for cost in costs)
    lines.append(f"{'total':<35} {each_jobs:>11} {own_jobs:>11} {each / 1e15:>13.4g} {own / 1e15:>13.4g} "
                 f"{each / own:>6.1f}")
    lines.append(f"each = one job per configuration, every item scored (sweep.score: all, sweep.group: "
                 f"configuration); this = the config's own modes (score: {sweep['score']}, group: {sweep['group']}). "
                 "Evaluation jobs only (base, configurations or layer groups, chosen); SVDs and data not counted.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .config import load_config

    paths = sys.argv[1:] if argv is None else argv
    try:
        print(report(load_config(*paths)))
    except LaserflowError as err:
        print(f"laserflow: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
