"""Reading a dataset's raw source as its builder expects it, with the sha256 of every file read.

A raw source is one file (CounterFact's JSON list, a hub dataset's ``{"splits": {...}}`` file as
the fetch rule writes it, or BIG-bench's task.json) or, for a hub dataset, a local copy in a
layout the hub or ``datasets`` writes:

- a directory of per-split JSON Lines or Parquet files, as the hub serves them: the split is
  the file name up to its first ``-`` or ``.`` (``paper_dev-00000-of-00001.parquet``,
  ``validation.jsonl``), a split's shards are read in name order, one format per split;
- a folder written by ``datasets.DatasetDict.save_to_disk`` (it holds ``dataset_dict.json``).

Both become the ``{"splits": {split: [row, ...]}}`` mapping of the hub file, with only the
columns the catalog reads from that source, so the builders give the same items in the same
order whatever the layout.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..io import LaserflowError, read_json, read_jsonl, sha256_file
from .catalog import dataset_info
from .hub import hub_columns

SPLIT_FILE = re.compile(r"^(\w+?)(?:[-.][^/]*)?\.(jsonl|parquet)$")


def read_raw(name: str, path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """Dataset ``name``'s parsed raw source and the sha256 of every file read (path -> digest)."""
    path = Path(path)
    if not path.is_dir():
        return read_json(path), {str(path): sha256_file(path)}
    info = dataset_info(name)
    if not info.hub:
        raise LaserflowError(f"{path}: a directory; dataset {name} is read from one JSON file")
    columns = hub_columns(info)
    if (path / "dataset_dict.json").is_file():
        splits = saved_splits(path, columns)
        files = sorted(file for file in path.rglob("*") if file.is_file())
    else:
        splits, files = split_files(path, columns)
    return {"splits": splits}, {str(file): sha256_file(file) for file in files}


def split_files(directory: Path, columns: tuple[str, ...]) -> tuple[dict[str, list], list[Path]]:
    """The rows of each split of a directory of per-split ``*.jsonl`` / ``*.parquet`` files."""
    if (directory / "state.json").is_file():
        raise LaserflowError(f"{directory}: a datasets save_to_disk folder of one split; save the DatasetDict "
                             "of its splits (it writes dataset_dict.json)")
    by_split: dict[str, list[Path]] = {}
    for file in sorted(directory.iterdir()):
        match = SPLIT_FILE.match(file.name)
        if match and file.is_file():
            by_split.setdefault(match.group(1), []).append(file)
    if not by_split:
        raise LaserflowError(f"{directory}: no per-split *.jsonl or *.parquet files (e.g. validation.jsonl, "
                             "train-00000-of-00001.parquet) and no datasets save_to_disk folder (dataset_dict.json)")
    splits = {}
    for split, files in by_split.items():
        if len({file.suffix for file in files}) > 1:
            raise LaserflowError(f"{directory}: split {split} has both .jsonl and .parquet files; keep one format")
        splits[split] = [row for file in files for row in _file_rows(file, columns)]
    return splits, [file for files in by_split.values() for file in files]


def _file_rows(file: Path, columns: tuple[str, ...]) -> list:
    if file.suffix == ".jsonl":
        return [{key: row[key] for key in columns if key in row} if isinstance(row, dict) else row
                for row in read_jsonl(file)]
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
        return pq.read_table(file, columns=[column for column in columns if column in schema.names]).to_pylist()
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise LaserflowError(f"{file}: not a readable Parquet file ({str(err).splitlines()[0]})") from None


def saved_splits(folder: Path, columns: tuple[str, ...]) -> dict[str, list]:
    """The rows of each split of a ``DatasetDict.save_to_disk`` folder."""
    import datasets

    saved = datasets.load_from_disk(str(folder))
    return {split: table.select_columns([column for column in columns if column in table.column_names]).to_list()
            for split, table in saved.items()}
