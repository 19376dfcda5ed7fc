"""Fetching a Hugging Face dataset into the raw JSON the dataset builders read.

The raw file is ``{"source": {hub, config, revision, commit}, "splits": {split: [row, ...]}}`` with
the catalog's splits in order and only the columns its datasets read (Bias in Bios' gender and
profession share one file). ``commit`` is the hub commit that ``datasets`` resolved the revision
to (absent for a local directory, which ``info.hub`` may also name).
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..io import LaserflowError, scratch_dir, write_json
from .catalog import DATASETS, DatasetInfo, dataset_info


def hub_columns(info: DatasetInfo) -> tuple[str, ...]:
    """The columns to keep: ``info``'s and those of every catalog dataset read from the same source."""
    same = [other for other in DATASETS.values() if (other.hub, other.hub_config) == (info.hub, info.hub_config)]
    return tuple(dict.fromkeys(column for other in (info, *same) for column in other.columns))


def fetch_configured(name: str, spec: dict, out_path: str | os.PathLike) -> None:
    """Fetch dataset ``name`` as its config ``spec`` says: ``hub`` (the paper's id or a mirror,
    e.g. the parquet copy hotpotqa/hotpot_qa), ``hub_config`` if not the catalog's, ``revision``."""
    info = dataset_info(name)
    info = replace(info, hub=spec["hub"], hub_config=spec.get("hub_config", info.hub_config))
    fetch_hub_dataset(info, out_path, spec["revision"])


def fetch_hub_dataset(info: DatasetInfo, out_path: str | os.PathLike, revision: str) -> None:
    """Load ``info.splits`` of ``info.hub`` at ``revision`` and write their rows (``hub_columns``) atomically."""
    import datasets

    if not info.hub:
        raise LaserflowError(f"dataset {info.name} has no hub source; point its 'local' key at the raw file")
    name, columns = f"dataset {info.hub}@{revision}", hub_columns(info)
    # A throwaway cache (removed by the next fetch if this one is killed): the raw JSON is the kept copy.
    with scratch_dir(out_path) as cache:
        try:
            builder = datasets.load_dataset_builder(info.hub, info.hub_config, revision=revision, cache_dir=str(cache))
            builder.download_and_prepare()
            splits = {}
            for split in info.splits:
                table = builder.as_dataset(split=split)
                missing = [column for column in columns if column not in table.column_names]
                if missing:
                    raise LaserflowError(f"{name}: split {split} has no column '{missing[0]}' "
                                         f"(found: {', '.join(table.column_names)})")
                splits[split] = table.select_columns(list(columns)).to_list()
        except ConnectionError as err:
            reason = str(err).splitlines()[0]
            raise LaserflowError(f"{name}: the hub is unreachable ({reason}); fetch it where the hub is reachable "
                                 f"and point the dataset's 'local' key at the raw JSON") from None
        except FileNotFoundError as err:  # datasets' DatasetNotFoundError included
            raise LaserflowError(f"{name} was not found ({str(err).splitlines()[0]}); check the id and HF_TOKEN, "
                                 f"or point the dataset's 'local' key at the raw JSON") from None
        except ValueError as err:  # unknown config or split
            raise LaserflowError(f"{name}: {str(err).splitlines()[0]}") from None
    source = {"hub": info.hub, "config": info.hub_config, "revision": revision}
    if not os.path.isdir(info.hub):
        source["commit"] = builder.hash
    write_json(out_path, {"source": source, "splits": splits})
