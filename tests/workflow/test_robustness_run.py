"""End to end: the robustness stage beside a sweep cell, and a cell of zero, prune and composite
entries that is evaluated without a selection."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from laserflow.io import read_json

COMPOSITE = "laser-fc_in-1-rate9+zero-fc_out-0-none"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, demo_counterfact, repo, snakemake):
    workdir = tmp_path_factory.mktemp("robustness")
    (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:20]))
    config = {
        "models": {"gptj": {"tiny": {"family": "gptj", "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128}}},
        "datasets": {"counterfact": {"local": "counterfact.json"}, "fever": {"local": str(repo / "data/demo/fever.json")}},
        # rate 9.95 keeps int(64 · 0.005000000000000071) = 0 of the 128x64 fc_in matrix: the zero matrix.
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": [9, 9.95]},
        "selected": {"gptj": {"fever": [
            {"intervention": "zero", "tau": "fc_in", "layer": 1},
            {"intervention": "prune", "tau": "fc_in", "layer": 0, "rate": 5},
            {"composite": [{"tau": "fc_in", "layer": 1, "rate": 9}, {"intervention": "zero", "tau": "fc_out", "layer": 0}]},
        ]}},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
        "robustness": {"enabled": True, "draws": 2, "top_k": 2},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    return workdir


def test_the_robustness_job_redraws_the_two_best_candidates(workdir):
    summary = read_json(workdir / "results/gptj/counterfact/robustness.json")
    selection = read_json(workdir / "results/gptj/counterfact/selection.json")
    assert (summary["draws"], summary["top_k"], len(summary["candidates"])) == (2, 2, 2)
    assert summary["candidates"][0]["file"] == selection["files"]["chosen"]
    for candidate in summary["candidates"]:
        # The search scored the validation part; its exact numbers are the robustness job's.
        run = read_json(workdir / candidate["file"])
        assert candidate["exact"]["val"] == run["metrics"]["val"]
        assert [draw["seed"] for draw in candidate["draws"]] == [0, 1]
    # The selected one's test numbers equal its own job's on every item.
    chosen = read_json(workdir / "results/gptj/counterfact/chosen.json")
    assert summary["candidates"][0]["exact"] == {"val": chosen["metrics"]["val"], "test": chosen["metrics"]["test"]}
    with open(workdir / "results/tables/robustness.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["dataset"], row["candidate"]) for row in rows] == [("counterfact", "1"), ("counterfact", "2")]
    assert float(rows[0]["exact_test_acc"]) == pytest.approx(chosen["metrics"]["test"]["acc"])
    for ext in ("png", "pdf"):
        assert (workdir / f"results/figures/robustness.{ext}").stat().st_size > 5000


def test_a_level_keeping_rank_0_runs_with_its_kept_rank_recorded_and_a_warning(workdir):
    run = read_json(workdir / "results/gptj/counterfact/runs/laser/fc_in/1/rate9.95.json")
    assert run["edits"][0]["matrices"] == {"transformer.h.1.mlp.fc_in.weight": {"shape": [128, 64], "kept_rank": 0}}
    log = (workdir / "logs/gptj/counterfact/runs/layer1.log").read_text()  # the layer group's job
    assert log.count("keeps rank 0") == 1
    assert ("rate9.95 keeps rank 0 of transformer.h.1.mlp.fc_in.weight (128x64): writing the zero matrix, as the "
            "original does") in log


def test_zero_prune_and_composite_entries_run_without_a_selection(workdir):
    runs = workdir / "results/gptj/fever/runs"
    composite = read_json(runs / f"composite/{COMPOSITE}.json")
    assert [edit["intervention"] for edit in composite["edits"]] == ["laser", "zero"]
    assert composite["edits"][0]["matrices"]["transformer.h.1.mlp.fc_in.weight"]["kept_rank"] == 6
    assert read_json(runs / "zero/fc_in/1/none.json")["edits"] == [
        {"intervention": "zero", "tau": "fc_in", "layer": 1}]
    assert (runs / "prune/fc_in/0/rate5.json").exists()
    assert not (workdir / "results/gptj/fever/selection.json").exists()
    with open(workdir / "results/tables/table1.csv") as handle:
        assert [row["dataset"] for row in csv.DictReader(handle)] == ["counterfact"]


def test_a_second_run_has_nothing_to_do_and_the_report_shows_the_robustness(workdir, snakemake):
    assert "Nothing to be done" in snakemake(workdir, "-n").output
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    for name in ("robustness.csv", "robustness.tex", "robustness.png"):
        assert name in html, name
