"""Code fingerprints: the import closure found from the code, blind to comments, docstrings and layout."""

from __future__ import annotations

import shutil

import pytest

from laserflow import fingerprint


@pytest.fixture
def package(tmp_path):
    """A copy of the laserflow sources to edit."""
    root = tmp_path / "laserflow"
    shutil.copytree(fingerprint.ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.yaml"))
    return root


def test_the_closure_follows_every_import_and_leaves_out_the_job_plumbing():
    evaluation = fingerprint.closure("laserflow.evaluate")
    for module in ("edits", "laser", "svd", "models", "scoring", "forward", "prompts", "settings", "selection",
                   "paths", "families", "io", "data.catalog"):
        assert f"laserflow.{module}" in evaluation, module
    assert {"laserflow", "laserflow.data"} <= set(evaluation)  # parent packages run on import
    assert not {"laserflow.figures", "laserflow.report", "laserflow.cli", "laserflow.worker"} & set(evaluation)
    assert fingerprint.closure("laserflow.figures", "laserflow.records") == [
        "laserflow", "laserflow.data", "laserflow.data.catalog", "laserflow.figures", "laserflow.io",
        "laserflow.paper", "laserflow.records"]
    # Imports inside functions count: build_items imports every dataset module lazily.
    assert {"laserflow.data.bigbench", "laserflow.data.hotpotqa"} <= set(fingerprint.closure("laserflow.data.prepare"))
    assert "laserflow.edits" in fingerprint.closure("laserflow.svd")  # svd -> laser -> edits


def test_comments_docstrings_and_layout_do_not_change_a_fingerprint(package):
    before = fingerprint.code_fingerprint("laserflow.evaluate", root=package)
    module = package / "edits.py"
    source = module.read_text()
    edited = source.replace('"""Configurations as data', '"""Configurations, as plain data', 1)
    edited = edited.replace("    def kept_rank(self, shape: tuple[int, int]) -> int:\n",
                            "    def kept_rank(self, shape: tuple[int, int]) -> int:  # the original's formula\n\n")
    edited = edited.replace('"""int(min(m, n) · ρ)', '"""The kept rank: int(min(m, n) · ρ)', 1)
    assert edited != source
    module.write_text(edited)
    fingerprint.code_fingerprint.cache_clear()
    assert fingerprint.code_fingerprint("laserflow.evaluate", root=package) == before


def test_a_change_of_meaning_changes_the_fingerprints_of_the_code_that_runs_it(package):
    rules = {"evaluate": ("laserflow.evaluate",), "svd": ("laserflow.svd",),
             "figures": ("laserflow.figures", "laserflow.records"), "data": ("laserflow.data.prepare",)}
    before = {rule: fingerprint.code_fingerprint(*entries, root=package) for rule, entries in rules.items()}
    module = package / "edits.py"
    module.write_text(module.read_text().replace("int(min(shape) * self.fraction)", "round(min(shape) * self.fraction)"))
    fingerprint.code_fingerprint.cache_clear()
    after = {rule: fingerprint.code_fingerprint(*entries, root=package) for rule, entries in rules.items()}
    assert {rule for rule in rules if after[rule] != before[rule]} == {"evaluate", "svd"}
