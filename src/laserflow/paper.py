"""The paper's published Table 1 (data/paper/table1.csv) and the display names of its ids."""

from __future__ import annotations

import csv
import os

from .data.catalog import DATASETS
from .io import LaserflowError

PAPER_COLUMNS = ["dataset", "model", "base_acc", "base_loss", "laser_acc", "laser_loss", "tau", "layer", "rho"]
_NUMERIC = ("base_acc", "base_loss", "laser_acc", "laser_loss", "rho")

MODEL_NAMES = {"roberta": "RoBERTa", "gptj": "GPT-J", "llama2": "Llama-2"}

# The paper's sweep-figure panels, in its order: τ -> panel title.
TAU_TITLES = {
    "k_proj": "Attention key",
    "q_proj": "Attention query",
    "v_proj": "Attention value",
    "out_proj": "Attention out",
    "fc_in": "MLP input",
    "fc_out": "MLP output",
}


def dataset_name(dataset: str) -> str:
    """The paper's name of a catalog dataset (the id itself for any other)."""
    info = DATASETS.get(dataset)
    return info.title if info else dataset


def model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def read_paper_table(path: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """(dataset, model) -> the paper's cell: accuracies (%), log-losses, τ, ℓ (int) and ρ."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != PAPER_COLUMNS:
                raise LaserflowError(f"{path}: the header must be {','.join(PAPER_COLUMNS)}")
            rows = list(reader)
    except FileNotFoundError:
        raise LaserflowError(f"{path}: the paper's reference table is missing") from None
    cells = {}
    for line, row in enumerate(rows, start=2):
        try:
            cell = {**row, **{key: float(row[key]) for key in _NUMERIC}, "layer": int(row["layer"])}
        except (TypeError, ValueError):
            raise LaserflowError(f"{path}: line {line}: a number is missing or malformed") from None
        key = (row["dataset"], row["model"])
        if key in cells:
            raise LaserflowError(f"{path}: line {line}: a second row for {key[0]}/{key[1]}")
        cells[key] = cell
    return cells
