"""End to end on a `path:` model: greedy composition and the higher-order components analysis run
after the sweep, agree with the sweep's own files, and reach the tables, figures and report."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from laserflow.io import read_json, read_jsonl


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_models, demo_counterfact, snakemake):
    workdir = tmp_path_factory.mktemp("beyond")
    (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:30]))
    config = {
        "models": {"local-gptj": {"path": str(tiny_models["gptj"]), "family": "gptj", "layers": 3}},
        "datasets": {"counterfact": {"local": str(workdir / "counterfact.json")}},
        "sweep": {"taus": ["fc_in"], "layers": [1, 2], "rates": [5, 9.9]},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
        "compose": {"enabled": True, "steps": [0, 0.5, 0.9]},
        "analysis": {"enabled": True, "shares": [0.5, 1.0], "examples": 5},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    return workdir


CELL = "results/local-gptj/counterfact"


def test_composition_visits_every_layer_from_the_last_and_its_table_row_is_the_summary(workdir):
    compose = read_json(workdir / CELL / "compose/compose.json")
    steps = read_jsonl(workdir / CELL / "compose/steps.jsonl")
    assert compose["plan"] == {"taus": ["fc_in"], "layers": [2, 1, 0], "steps": [0, 0.5, 0.9]}
    assert [step["layer"] for step in steps[1:]] == sorted([step["layer"] for step in steps[1:]], reverse=True)
    assert {step["layer"] for step in steps[1:]} == {2, 1, 0} and compose["evaluations"] == len(steps)
    selection = read_json(workdir / CELL / "selection.json")
    assert compose["laser"]["edit"] == selection["chosen"] and compose["base"]["test"] == selection["base"]["test"]
    with open(workdir / "results/tables/composition.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["composite_test_acc"]) == pytest.approx(compose["composite"]["test"]["acc"], rel=1e-5)
    assert float(row["composite_val_logloss"]) == pytest.approx(compose["composite"]["val"]["logloss"], rel=1e-5)
    assert int(row["composed_matrices"]) == len(compose["edits"]) and row["compose_file"] == f"{CELL}/compose/compose.json"
    assert (workdir / "results/figures/local-gptj/counterfact/composition.png").stat().st_size > 10000


def test_the_analysis_base_and_laser_predictions_are_the_sweeps(workdir):
    analysis = read_json(workdir / CELL / "analysis/analysis.json")
    selection = read_json(workdir / CELL / "selection.json")
    assert analysis["configuration"] == selection["chosen"] and analysis["configuration_source"] == "selected"
    predictions = read_jsonl(workdir / CELL / "analysis/analysis.items.jsonl.gz")
    base = read_jsonl(workdir / CELL / "base.items.jsonl.gz")
    laser = read_jsonl(workdir / CELL / "chosen.items.jsonl.gz")  # the chosen configuration on every item
    assert [item["predictions"][0] for item in predictions] == [record["prediction"] for record in base]
    assert [item["predictions"][1] for item in predictions] == [record["prediction"] for record in laser]
    assert [item["predictions"][-1] for item in predictions] == [record["prediction"] for record in base]  # 100%
    corrected = [record["index"] for record, fixed in zip(base, laser) if fixed["correct"] and not record["correct"]]
    with open(workdir / "results/tables/local-gptj/counterfact/corrections.csv") as handle:
        assert [int(row["index"]) for row in csv.DictReader(handle)] == corrected
    assert (workdir / "results/figures/local-gptj/counterfact/analysis.png").stat().st_size > 10000


def test_a_second_run_has_nothing_to_do_and_the_report_has_the_new_entries(workdir, snakemake):
    assert "Nothing to be done" in snakemake(workdir, "-n").output
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    for name in ("composition.csv", "composition.tex", "local-gptj/counterfact/composition.png",
                 "local-gptj/counterfact/analysis.png", "local-gptj/counterfact/corrections.csv"):
        assert name in html, name
