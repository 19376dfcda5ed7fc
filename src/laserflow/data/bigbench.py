"""BIG-bench epistemic_reasoning and qa_wikidata as the original ``src/dataset_utils/bigbench.py`` builds them.

Items come from split validation then train. Epistemic: exactly one target, one of the catalog's
choices, labelled by its index. Wikidata: only rows with exactly one target; question and answer
are stripped.

Two raw sources are accepted:

- ``tasksource/bigbench`` rows (``{"source": ..., "splits": ...}``), the original's source.
- BIG-bench's own ``task.json`` (PyPI ``bigbench`` 1.0.0, ``bigbench/benchmark_tasks/<task>/task.json``),
  recognised by its top-level ``examples``. Each example becomes the row the Hugging Face
  ``bigbench`` dataset script built (tasksource/bigbench is its parquet copy), following
  ``bigbench/api/json_task.py`` (``JsonTask.load_and_process_json``, ``default_format_fn``) and
  ``bigbench/bbseqio/bigbench_bridge.py`` (``get_dataset_fn``, ``_parse_for_huggingface``):

  * exact duplicate examples (same ``json.dumps``) are dropped, first kept (qa_wikidata: 20,442 -> 20,321);
  * ``inputs = task_prefix + example_input_prefix + input + example_output_prefix``, with the
    defaults ``""``, ``"\\nQ: "``, ``"\\nA: "``; where ``append_choices_to_input`` (default true)
    and ``target_scores`` are set, the choices, sorted then permuted by ``RandomState(42)``, are
    first appended to ``input``, each after ``choice_prefix`` (default ``"\\n  choice: "``);
  * ``targets`` = ``target`` as a list, or else the first choice with the highest ``target_scores``;
  * the HF script strips ``inputs`` and every target. So epistemic inputs read
    ``"Identify the relation ... 'non-entailment'.\\n\\nPremise: ... Hypothesis: ...\\nRelation:"``
    and wikidata inputs ``"The language of X is"`` (prefixes ``"\\n"`` and ``" "``, stripped away);
  * splits: the examples are shuffled with ``random.seed(42); random.shuffle`` and the last
    ``max(int(0.2 n), 16)`` form validation, the rest train (epistemic: 400 + 1,600).

  Items from this source keep the split of the seed-42 split they fall in (``validation`` or
  ``train``), as tasksource rows do. Their order reproduces that code (validation then train);
  it was not checked against the tasksource parquet files.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ..io import LaserflowError
from .rows import field, hub_splits, label_of, where
from .catalog import DATASETS, DatasetInfo

SPLIT_SEED = 42  # bigbench_bridge.SPLIT_SHUFFLE_SEED, also json_task's random_seed
MIN_VALIDATION = 16  # the HF script's MIN_VALIDATION_EXAMPLES


def _hf_row(example: Any, task: dict, at: str) -> dict:
    """The ``inputs`` and ``targets`` the HF script gives one task.json example."""
    text = field(example, "input", at)
    scores = field(example, "target_scores", at, dict) if "target_scores" in example else {}
    if "target" in example:
        target = field(example, "target", at, None)
        targets = target if isinstance(target, list) else [target]
    elif scores:
        best = max(scores.values())
        if (len(scores) > 1 and best <= min(scores.values())) or (len(scores) == 1 and best == 0):
            raise LaserflowError(f"{at}: field 'target_scores' marks no correct choice")
        targets = [next(choice for choice, score in scores.items() if score == best)]
    else:
        raise LaserflowError(f"{at}: missing field 'target' (or 'target_scores')")
    if not all(isinstance(target, str) for target in targets):
        raise LaserflowError(f"{at}: field 'target' must hold strings")
    if scores and task.get("append_choices_to_input", True):
        import numpy as np

        prefix = task.get("choice_prefix", "\n  choice: ")
        text += prefix + prefix.join(np.random.RandomState(SPLIT_SEED).permutation(sorted(scores)))
    inputs = (str(task.get("task_prefix", "")) + task.get("example_input_prefix", "\nQ: ") + text
              + task.get("example_output_prefix", "\nA: "))
    return {"inputs": inputs.strip(), "targets": [target.strip() for target in targets]}


def task_json_splits(task: dict, source: str, info: DatasetInfo) -> dict[str, list[tuple[int, dict]]]:
    """validation and train rows built from a BIG-bench task.json, each with its example number."""
    if task.get("name") != info.hub_config:
        raise LaserflowError(f"{source}: task.json of task {task.get('name')!r}, expected '{info.hub_config}'")
    seen, rows = set(), []
    for number, example in enumerate(field(task, "examples", source, list)):
        key = json.dumps(example)
        if key not in seen:
            seen.add(key)
            rows.append((number, _hf_row(example, task, f"{source}: example {number}")))
    random.Random(SPLIT_SEED).shuffle(rows)
    validation = max(int(0.2 * len(rows)), MIN_VALIDATION)
    if validation >= len(rows):
        raise LaserflowError(f"{source}: {len(rows)} distinct examples; BIG-bench's train/validation split "
                             f"needs more than {MIN_VALIDATION}")
    return {"validation": rows[len(rows) - validation:], "train": rows[:len(rows) - validation]}


def bigbench_rows(raw: Any, source: str, info: DatasetInfo) -> list[tuple[str, str, dict]]:
    """(split, location, row) in item order, from a tasksource file or a task.json."""
    if isinstance(raw, dict) and "examples" in raw:
        splits = task_json_splits(raw, source, info)
        return [(split, f"{source}: example {number}", row) for split in info.splits
                for number, row in splits[split]]
    splits = hub_splits(raw, source, info.splits)
    return [(split, where(source, split, number), row) for split in info.splits
            for number, row in enumerate(splits[split])]


def _targets(row: dict, at: str) -> list:
    targets = field(row, "targets", at, list)
    if not all(isinstance(target, str) for target in targets):
        raise LaserflowError(f"{at}: field 'targets' must hold strings")
    return targets


def epistemic_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, label, split}``; label indexes the catalog's choices."""
    info = DATASETS["bigbench_epistemic"]
    choices = {choice: index for index, choice in enumerate(info.choices)}
    items = []
    for split, at, row in bigbench_rows(raw, source, info):
        question = field(row, "inputs", at)
        targets = _targets(row, at)
        if len(targets) != 1:
            raise LaserflowError(f"{at}: field 'targets' must hold exactly 1 target, found {len(targets)}")
        items.append({"index": len(items), "question": question, "label": label_of(targets[0], choices, at, "targets"),
                      "split": split})
    return items


def wikidata_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, answer, split}`` of the rows with exactly one target."""
    items = []
    for split, at, row in bigbench_rows(raw, source, DATASETS["bigbench_wikidata"]):
        question = field(row, "inputs", at)
        targets = _targets(row, at)
        if len(targets) == 1:
            items.append({"index": len(items), "question": question.strip(), "answer": targets[0].strip(),
                          "split": split})
    return items
