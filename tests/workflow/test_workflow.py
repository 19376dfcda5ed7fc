"""End to end: Snakemake on a small config produces the table and figures, then reruns minimally."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from laserflow.io import read_json
from laserflow.selection import select_best

MODELS = {
    name: {"tiny": {"family": family, "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128, "seed": 1}}
    for name, family in (("gptj", "gptj"), ("llama", "llama"), ("roberta", "roberta"))
}


def write_config(workdir, rates):
    config = {
        "models": MODELS,
        "datasets": {"counterfact": {"local": str(workdir / "counterfact.json")}},
        "sweep": {"taus": ["fc_in", "fc_out"], "layers": [1], "rates": rates},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, demo_counterfact, snakemake):
    workdir = tmp_path_factory.mktemp("workflow")
    records = json.loads(demo_counterfact.read_text())[:20]
    (workdir / "counterfact.json").write_text(json.dumps(records))
    write_config(workdir, rates=[9])
    snakemake(workdir)
    return workdir


def test_the_run_writes_table_and_figures_from_the_selections(workdir):
    with open(workdir / "results/tables/table1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == ["gptj", "llama", "roberta"]
    for row in rows:
        selection = read_json(workdir / f"results/{row['model']}/counterfact/selection.json")
        assert selection["n_items"] == 60 and selection["n_val"] == 12
        # The search scored the validation part only; the chosen configuration's own job scored all.
        chosen = read_json(workdir / f"results/{row['model']}/counterfact/chosen.json")
        assert (chosen["score"], chosen["metrics"]["val"]) == ("all", selection["laser"]["val"])
        assert float(row["laser_test_acc"]) == pytest.approx(chosen["metrics"]["test"]["acc"], rel=1e-5)
        assert float(row["base_test_logloss"]) == pytest.approx(selection["base"]["test"]["logloss"], rel=1e-5)
        runs = [read_json(workdir / f"results/{row['model']}/counterfact/runs/laser/{tau}/1/rate9.json")
                for tau in ("fc_in", "fc_out")]
        assert {run["score"] for run in runs} == {"validation"} and all("test" not in run["metrics"] for run in runs)
        best = runs[select_best(runs)]
        assert selection["chosen"] == best["edits"][0] and chosen["edits"] == best["edits"]
        assert row["base_file"] == f"results/{row['model']}/counterfact/base.json"
        assert row["laser_file"] == f"results/{row['model']}/counterfact/chosen.json"
        assert (row["tau"], int(row["layer"]), float(row["rho"])) == (best["edits"][0]["tau"], 1, 0.1)
        for ext in ("png", "pdf"):
            assert (workdir / f"results/figures/{row['model']}/counterfact/sweep.{ext}").stat().st_size > 5000
    markdown = (workdir / "results/tables/table1.md").read_text()
    assert markdown.splitlines()[0] == "| dataset | model | base acc (loss) | LASER acc (loss) | (τ, ℓ, ρ) |"


def test_a_second_run_has_nothing_to_do(workdir, snakemake):
    assert "Nothing to be done" in snakemake(workdir, "-n").output


def test_one_added_rate_reruns_only_the_layer_groups_it_joins(workdir, snakemake, planned_jobs):
    write_config(workdir, rates=[9, 2])
    planned = planned_jobs(snakemake(workdir, "-n").output)
    # One layer group per model (layer 1) gains a configuration; provenance reads only the base
    # results, which stay as they are.
    assert planned == {"evaluate_layer": 3, "select": 3, "evaluate_chosen": 3, "sweep_figure": 3,
                       "heatmap_figure": 3, "table1": 1, "hyperparameters": 1, "numbers": 1, "bars_figure": 1,
                       "all": 1}
    snakemake(workdir)
    assert len(list((workdir / "results").glob("*/counterfact/runs/laser/*/1/rate2.json"))) == 6
    assert "Nothing to be done" in snakemake(workdir, "-n").output


def test_asking_for_one_configuration_runs_only_it_and_its_inputs(workdir, snakemake, planned_jobs):
    target = "results/gptj/counterfact/runs/laser/fc_in/0/rate9.9.json"
    planned = planned_jobs(snakemake(workdir, "-n", target).output)
    assert planned == {"svd": 1, "evaluate_configuration": 1}


def test_the_report_collects_every_table_and_figure(workdir, snakemake):
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    assert len(html) > 200_000  # the figures are embedded
    assert "laserflow: reproducing LASER" in html  # the landing page (report/workflow.rst)
    for name in ("table1.csv", "table1.tex", "hyperparameters.csv", "hyperparameters.tex", "numbers.tex",
                 "provenance.csv", "table1_bars.png"):
        assert name in html, name
    for model in MODELS:
        for figure in ("sweep.png", "val_heatmap.png"):
            assert f"results/figures/{model}/counterfact/{figure}" in html, (model, figure)
