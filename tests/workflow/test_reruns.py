"""Reruns by meaning: on a copy of the repository, a comment or docstring edit reruns nothing, and a
change of meaning reruns exactly the jobs whose code imports the changed module."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from laserflow import fingerprint

# Rules that reran (or would rerun) because of an upstream job, not because of their own code.
REPORT_RULES = {"table1", "hyperparameters", "numbers", "provenance", "sweep_figure", "heatmap_figure",
                "bars_figure", "all"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory, repo, demo_counterfact, snakemake):
    """A copy of the workflow and its package, run once; jobs import the copy (PYTHONPATH)."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("Snakefile", "rules", "scripts", "src", "envs", "styles", "report", "profiles", "data/paper"):
        copy = shutil.copytree if (repo / name).is_dir() else shutil.copy
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        copy(repo / name, root / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
                                          if (repo / name).is_dir() else {}))
    workdir = root / "work"
    workdir.mkdir()
    (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:8]))
    config = {
        "models": {"gptj": {"tiny": {"family": "gptj", "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128}}},
        "datasets": {"counterfact": {"local": "counterfact.json"}},
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": [9, 2]},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(root / "src"))

    def run(*args):
        return snakemake(workdir, *args, env=env, snakefile=root / "Snakefile")

    run()
    return root, run


def planned(run, planned_jobs) -> set[str]:
    output = run("-n").output
    return set() if "Nothing to be done" in output else set(planned_jobs(output))


def edit(path: Path, old: str, new: str) -> str:
    source = path.read_text()
    assert old in source, (path, old)
    path.write_text(source.replace(old, new, 1))
    return source


def test_the_checkout_runs_its_own_package(checkout):
    root, run = checkout
    import subprocess
    import sys

    found = subprocess.run([sys.executable, "-c", "import laserflow; print(laserflow.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(root / "src")), capture_output=True, text=True)
    assert Path(found.stdout.strip()).parent == root / "src" / "laserflow"


def test_comment_and_docstring_edits_rerun_nothing(checkout, planned_jobs):
    root, run = checkout
    package = root / "src" / "laserflow"
    originals = {}
    for module in sorted(package.rglob("*.py")):
        source = module.read_text()
        originals[module] = source
        # A comment line and a reworded module docstring in every module of the package.
        module.write_text(source.replace('"""', '"""Reworded: ', 1) + "\n# a comment\n")
    try:
        assert planned(run, planned_jobs) == set()
    finally:
        for module, source in originals.items():
            module.write_text(source)


def test_a_change_in_edits_reruns_the_svd_and_evaluation_jobs_only(checkout, planned_jobs):
    root, run = checkout
    module = root / "src" / "laserflow" / "edits.py"
    source = edit(module, "    def kept_rank(self, shape: tuple[int, int]) -> int:",
                  "    def kept_rank(self, shape: tuple[int, int], unused: int = 0) -> int:")
    try:
        assert planned(run, planned_jobs) == {"svd", "evaluate_base", "evaluate_layer", "select", "evaluate_chosen"} | REPORT_RULES
    finally:
        module.write_text(source)
    assert planned(run, planned_jobs) == set()


def test_a_change_in_figures_reruns_only_the_figures(checkout, planned_jobs):
    root, run = checkout
    module = root / "src" / "laserflow" / "figures.py"
    source = edit(module, 'BAR_COLOURS = {"base": "#525252"', 'BAR_COLOURS = {"base": "#535353"')
    try:
        assert planned(run, planned_jobs) == {"sweep_figure", "heatmap_figure", "bars_figure", "all"}
    finally:
        module.write_text(source)


def test_the_fingerprint_of_each_rule_covers_the_modules_its_script_imports(repo):
    """Rules name the entry modules of their fingerprint; a script importing a module outside the
    closure of its rule's entries would make that rule miss reruns."""
    import ast
    import re

    from laserflow.worker import JOBS

    rules_text = "\n".join(path.read_text() for path in sorted((repo / "rules").glob("*.smk")))
    rules_text += "\n" + (repo / "Snakefile").read_text()
    named = dict(re.findall(r'(\w+_CODE) = code_fingerprint\(([^)]*)\)', rules_text))
    checked = 0
    for block in re.split(r"\nrule ", rules_text)[1:]:
        script = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', block)
        code = re.search(r"code=(code_fingerprint\(([^)]*)\)|\w+_CODE)", block)
        if not script:
            continue
        assert code, f"rule {block.split(':')[0]} has no code fingerprint"
        entries = re.findall(r'"([\w.]+)"', code.group(2) or named[code.group(1)])
        closure = set(fingerprint.closure(*entries))
        tree = ast.parse((repo / "scripts" / f"{script.group(1)}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {JOBS[node.args[0].value] for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and getattr(node.func, "id", None) == "run_job"}
        imported = {name for name in imported if name.startswith("laserflow")} - fingerprint.PLUMBING
        assert imported <= closure, (script.group(1), imported - closure)
        checked += 1
    assert checked >= 15
