"""Bias in Bios (``LabHC/bias_in_bios``, dev split) as the original ``src/dataset_utils/bias_in_bios.py`` builds it.

Gender: every dev row, label 0 male / 1 female. Profession: the rows whose LabHC profession
(an index into the 28 alphabetical names below) is one of the paper's eight, labelled by the
name's position in ``catalog.PROFESSIONS``. The bio text is kept as it is.
"""

from __future__ import annotations

from typing import Any

from .rows import field, hub_splits, label_of, where
from .catalog import DATASETS, PROFESSIONS

LABHC_PROFESSIONS = (
    "accountant", "architect", "attorney", "chiropractor", "comedian", "composer", "dentist", "dietitian",
    "dj", "filmmaker", "interior_designer", "journalist", "model", "nurse", "painter", "paralegal", "pastor",
    "personal_trainer", "photographer", "physician", "poet", "professor", "psychologist", "rapper",
    "software_engineer", "surgeon", "teacher", "yoga_teacher",
)


def _dev_rows(raw: Any, source: str, label_field: str, labels: dict):
    """(text, label) of each dev row, in order."""
    (split,) = DATASETS["bios_gender"].splits
    for number, row in enumerate(hub_splits(raw, source, (split,))[split]):
        at = where(source, split, number)
        yield field(row, "hard_text", at), label_of(field(row, label_field, at, None), labels, at, label_field)


def bios_gender_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, label}`` of every dev row (0 male, 1 female)."""
    return [{"index": index, "question": text, "label": label}
            for index, (text, label) in enumerate(_dev_rows(raw, source, "gender", {0: 0, 1: 1}))]


def bios_profession_items(raw: Any, source: str) -> list[dict]:
    """Items ``{index, question, label}`` of the dev rows in the eight professions; label indexes PROFESSIONS."""
    rows = _dev_rows(raw, source, "profession", dict(enumerate(LABHC_PROFESSIONS)))
    kept = [(text, name) for text, name in rows if name in PROFESSIONS]
    return [{"index": index, "question": text, "label": PROFESSIONS.index(name)}
            for index, (text, name) in enumerate(kept)]
