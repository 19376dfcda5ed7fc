"""Dataset preparation: a raw source becomes canonical JSON Lines in the protocol's order (see
``catalog``), checked against the dataset's known size, with a source record beside it: the raw
source and the sha256 of every file read (``{"source": ..., "files": {path: sha256}}``), which
evaluation copies into each result's provenance."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..io import LaserflowError, sha256_file, write_json, write_jsonl
from .local import read_raw

log = logging.getLogger(__name__)


def check_size(dataset: str, found: int, expected: int | None, on_mismatch: str = "error") -> None:
    """Stop (or warn, if configured) when a processed source does not have its known size."""
    if expected is None or found == expected:
        return
    message = f"dataset {dataset}: expected {expected} items, found {found}"
    if on_mismatch == "warn":
        log.warning("%s", message)
        return
    raise LaserflowError(message + " (set size_mismatch: warn to continue anyway)")


def build_items(name: str, raw: Any, source: str, answer_tokenizer: str | os.PathLike | None = None) -> list[dict]:
    """The processed items of the catalog dataset ``name`` from its parsed raw file."""
    from . import bigbench, bios, counterfact, fever, hotpotqa, truthfulqa
    from .catalog import dataset_info

    dataset_info(name)
    if name == "hotpotqa":
        if answer_tokenizer is None:
            raise LaserflowError("dataset hotpotqa: answer_tokenizer is not set (a model directory with the "
                                 "Llama-2 tokenizer that filters answers by length)")
        return hotpotqa.hotpotqa_items(raw, source, hotpotqa.answer_token_counter(answer_tokenizer))
    builders = {
        "counterfact": counterfact.counterfact_items,
        "fever": fever.fever_items,
        "bios_gender": bios.bios_gender_items,
        "bios_profession": bios.bios_profession_items,
        "truthfulqa": truthfulqa.truthfulqa_items,
        "bigbench_epistemic": bigbench.epistemic_items,
        "bigbench_wikidata": bigbench.wikidata_items,
    }
    return builders[name](raw, source)


def prepare_dataset(name: str, raw_path: str | os.PathLike, out_path: str | os.PathLike,
                    expected_items: int | None = None, size_mismatch: str = "error",
                    answer_tokenizer: str | os.PathLike | None = None,
                    source_path: str | os.PathLike | None = None) -> int:
    """Write the items of a raw source (a file or a local copy, ``laserflow.data.local``) as JSON
    Lines and, given ``source_path``, its source record (both atomically); returns the item count."""
    raw, files = read_raw(name, raw_path)
    items = build_items(name, raw, str(raw_path), answer_tokenizer)
    check_size(name, len(items), expected_items, size_mismatch)
    write_jsonl(out_path, items)
    if source_path is not None:
        write_json(source_path, {"source": str(raw_path), "files": files})
    log.info("%s: %d items from %s (%d files)", name, len(items), raw_path, len(files))
    return len(items)


def prepare_configured(name: str, spec: dict, raw_path: str | os.PathLike, out_path: str | os.PathLike,
                       answer_tokenizer: str | os.PathLike | None = None,
                       source_path: str | os.PathLike | None = None) -> int:
    """``prepare_dataset`` as the dataset's config ``spec`` says; the expected size defaults to the
    catalog's known size when the source is the real one (a URL or the hub)."""
    from .catalog import dataset_info

    known = dataset_info(name).expected_items if "url" in spec or "hub" in spec else None
    if "local" in spec and "sha256" in spec:
        if os.path.isdir(raw_path):
            raise LaserflowError(f"datasets.{name}.sha256: {raw_path} is a directory; a sha256 checks one file")
        found = sha256_file(raw_path)
        if found != spec["sha256"]:
            raise LaserflowError(f"{raw_path}: sha256 mismatch: datasets.{name}.sha256 is {spec['sha256']}, "
                                 f"the file's is {found}")
    return prepare_dataset(name, raw_path, out_path, spec.get("expected_items", known),
                           spec.get("size_mismatch", "error"), answer_tokenizer, source_path)


def raw_items(name: str, raw_path: str | os.PathLike) -> list[dict]:
    """A raw source's items before any tokenizer filter (HotPotQA keeps every answer): the text
    the demo's tiny tokenizers are trained on, which HotPotQA's own filter then needs."""
    from . import hotpotqa

    raw, _ = read_raw(name, raw_path)
    if name == "hotpotqa":
        return hotpotqa.hotpotqa_items(raw, str(raw_path), lambda answer: 0)
    return build_items(name, raw, str(raw_path))
