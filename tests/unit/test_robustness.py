"""SVD-draw sensitivity: each draw is the sweep's randomized evaluation with that seed, the exact
truncation the sweep's exact one; the table and figure from known summaries."""

from __future__ import annotations

import csv

import pytest
import torch

from laserflow import laser
from laserflow.edits import Edit, Level
from laserflow.evaluate import run_configuration
from laserflow.figures import plot_robustness
from laserflow.io import LaserflowError, read_json, read_jsonl, write_jsonl
from laserflow.models import load_model
from laserflow.paths import run_file
from laserflow.report import write_robustness
from laserflow.robustness import candidates, run_robustness
from laserflow.selection import select_best, select_files
from laserflow.settings import EvaluationPaths, EvaluationSettings, RobustnessPaths, ScoringOptions, SvdSettings

# fc_in 256x128 of the tiny models: rate 9 keeps 12, rate 9.95 keeps 0.
EDITS = [Edit("laser", "fc_in", 2, Level(rate=9.0)), Edit("laser", "fc_in", 1, Level(rate=9.95)),
         Edit("laser", "fc_out", 1, Level(rate=9.0))]


def settings(svd: SvdSettings | None = None) -> EvaluationSettings:
    return EvaluationSettings("tiny", "fever", scoring=ScoringOptions(batch_size=16, show_progress=False), svd=svd)


def evaluate(model_dir, dataset, out, edits, svd=None) -> dict:
    summary = out / (run_file("tiny", "fever", edits[0]) if edits else "base.json")
    paths = EvaluationPaths(str(model_dir), str(dataset), str(summary), str(summary).replace(".json", ".items.jsonl.gz"))
    return run_configuration(settings(svd), edits, paths)


@pytest.fixture(scope="module")
def cell(tiny_models, tmp_path_factory, repo):
    """A cell of the tiny Llama on 40 FEVER items: the base, three exact runs, the selection and
    a robustness job over the best two candidates with three draws."""
    from laserflow.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("cell")
    dataset = out / "fever.jsonl"
    prepare_dataset("fever", repo / "data" / "demo" / "fever.json", dataset)
    write_jsonl(dataset, read_jsonl(dataset)[:40])
    model = tiny_models["llama"]
    evaluate(model, dataset, out, [])
    runs = [str(out / run_file("tiny", "fever", edit)) for edit in EDITS]
    for edit in EDITS:
        evaluate(model, dataset, out, [edit], SvdSettings())
    select_files(str(out / "base.json"), runs, str(out / "selection.json"))
    paths = RobustnessPaths(str(model), str(dataset), str(out / "selection.json"), str(out / "robustness.json"),
                            str(out / "robustness.items.jsonl.gz"), runs=tuple(runs))
    summary = run_robustness(settings(), 3, 2, paths)
    return {"out": out, "dataset": dataset, "model": model, "runs": runs, "summary": summary}


def test_each_draw_is_the_sweeps_randomized_evaluation_with_that_seed(cell):
    summary, runs = cell["summary"], [read_json(path) for path in cell["runs"]]
    assert (summary["draws"], summary["niter"], summary["top_k"], summary["n_items"]) == (3, 2, 2, 40)
    ranked = sorted(range(3), key=lambda i: (-runs[i]["metrics"]["val"]["acc"], runs[i]["metrics"]["val"]["logloss"], i))
    for candidate, position in zip(summary["candidates"], ranked):
        run = runs[position]
        assert candidate["file"] == cell["runs"][position] and candidate["edit"] == run["edits"][0]
        assert candidate["exact"] == {"val": run["metrics"]["val"], "test": run["metrics"]["test"]}
        for seed, draw in enumerate(candidate["draws"]):
            drawn = evaluate(cell["model"], cell["dataset"], cell["out"] / f"seed{seed}", [EDITS[position]],
                             SvdSettings(mode="randomized", seed=seed))
            assert draw["seed"] == seed
            assert (draw["val"], draw["test"]) == (drawn["metrics"]["val"], drawn["metrics"]["test"])
    records = read_jsonl(cell["out"] / "robustness.items.jsonl.gz")
    assert len(records) == 2 * 4 * 40
    assert records[0] == {"candidate": 1, "seed": None} | {key: read_jsonl(cell["runs"][ranked[0]].replace(
        ".json", ".items.jsonl.gz"))[0][key] for key in ("index", "correct", "answer_logprob", "answer_len")}


def test_the_distance_is_the_drawn_matrix_against_the_exact_truncation(cell):
    model, _, family = load_model(cell["model"])
    for candidate in cell["summary"]["candidates"]:
        edit = Edit.from_description(candidate["edit"])
        (name,) = family.parameter_names(edit.tau, edit.layer)
        weight = dict(model.named_parameters())[name].detach()
        rank = edit.level.kept_rank(tuple(weight.shape))
        exact = laser.truncate(laser.svd_factors(weight), rank, weight) if rank else torch.zeros_like(weight)
        for seed, draw in enumerate(candidate["draws"]):
            drawn = laser.randomized_low_rank(weight, rank, 2, seed) if rank else torch.zeros_like(weight)
            expected = float(torch.linalg.norm(drawn - exact) / torch.linalg.norm(exact)) if rank else 0.0
            assert draw["distance"] == pytest.approx(expected, rel=1e-5)


def test_top_k_says_which_candidate_each_draw_would_select(cell):
    summary = cell["summary"]
    by_position = sorted(summary["candidates"], key=lambda c: cell["runs"].index(c["file"]))
    expected = [by_position[select_best([{"metrics": c["draws"][seed]} for c in by_position])]["rank"]
                for seed in range(3)]
    assert summary["selected_under_draws"] == expected


def test_a_stale_selection_is_refused(cell):
    selection = read_json(cell["out"] / "selection.json")
    runs = {path: read_json(path) for path in cell["runs"]}
    assert [c.file for c in candidates(selection, runs, 1, "s.json")] == [selection["files"]["chosen"]]
    other = next(run for run in runs.values() if run["edits"][0]["tau"] != selection["chosen"]["tau"] or
                 run["edits"][0]["layer"] != selection["chosen"]["layer"])
    selection["chosen"] = other["edits"][0]
    with pytest.raises(LaserflowError) as err:
        candidates(selection, runs, 2, "s.json")
    assert str(err.value) == "s.json: the selection does not name the best of the cell's runs; rerun the select rule"


def summary_of(model, dataset, tests, exact, base, under=None, tau="fc_in", layer=27, rho=0.01):
    draws = [{"seed": seed, "val": {"acc": 50.0 + seed, "logloss": 1.0}, "test": {"acc": acc, "logloss": 2.0 + seed},
              "distance": 0.1 * (seed + 1)} for seed, acc in enumerate(tests)]
    candidate = {"rank": 1, "file": f"results/{model}/{dataset}/runs/x.json",
                 "edit": {"intervention": "laser", "tau": tau, "layer": layer, "rho": rho, "level": "rate9.9",
                          "rate": 9.9}, "exact": {"val": {"acc": 51.0}, "test": {"acc": exact, "logloss": 1.5}},
                 "draws": draws}
    out = {"model": model, "dataset": dataset, "draws": len(draws), "niter": 2,
           "base": {"test": {"acc": base}}, "candidates": [candidate]}
    if under is not None:
        second = dict(candidate, rank=2, edit=dict(candidate["edit"], layer=layer - 1))
        out |= {"candidates": [candidate, second], "selected_under_draws": under}
    return out


def test_the_table_puts_the_papers_number_beside_the_draws_range(tmp_path):
    paper = {("counterfact", "gptj"): {"laser_acc": 24.0, "tau": "fc_in", "layer": 27, "rho": 0.01},
             ("fever", "gptj"): {"laser_acc": 56.0, "tau": "fc_in", "layer": 24, "rho": 0.01}}
    summaries = [summary_of("gptj", "fever", [50.0, 52.0, 54.0], 53.0, 50.0),
                 summary_of("gptj", "counterfact", [23.0, 25.0, 24.5, 24.0], 24.2, 13.1, under=[1, 2, 1, 1]),
                 summary_of("tiny", "fever", [60.0], 60.0, 55.0)]
    rows = write_robustness(summaries, tmp_path / "r.csv", tmp_path / "r.md", tmp_path / "r.tex", paper=paper)
    first = rows[0]
    assert (first["dataset"], first["candidate"], first["draws"]) == ("counterfact", 1, 4)
    assert first["draw_test_acc_mean"] == pytest.approx(24.125)
    assert first["draw_test_acc_sd"] == pytest.approx(0.853912563829966)
    assert (first["draw_test_acc_min"], first["draw_test_acc_max"], first["paper_in_draw_range"]) == (23.0, 25.0, "yes")
    assert first["distance_mean"] == pytest.approx(0.25) and first["selected_fraction"] == 0.75
    assert rows[1]["selected_fraction"] == 0.25
    assert rows[2]["paper_in_draw_range"] == "no" and rows[3]["paper_laser_acc"] is None
    with open(tmp_path / "r.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    lines = (tmp_path / "r.md").read_text().splitlines()
    assert lines[2:5] == [
        "| counterfact | gptj | (fc_in, 27, 0.01) | 13.10 | 24.20 | 24.12 ± 0.85 | 23.00 – 25.00 | 24.0 | yes | 0.250 |",
        "| fever | gptj | (fc_in, 27, 0.01) | 50.00 | 53.00 | 52.00 ± 2.00 | 50.00 – 54.00 | 56.0* | no | 0.200 |",
        "| fever | tiny | (fc_in, 27, 0.01) | 55.00 | 60.00 | 60.00 | 60.00 – 60.00 | – | – | 0.100 |",
    ]
    assert "| counterfact | gptj | 2 | (fc_in, 26, 0.01) | 51.00 | 51.50 | 25% |" in lines
    assert r"\end{tabular}" in (tmp_path / "r.tex").read_text()


def test_the_figure_is_written_the_same_twice(tmp_path, repo):
    summaries = [summary_of("gptj", "fever", [50.0, 52.0, 54.0], 53.0, 50.0)]
    paper = {("fever", "gptj"): {"laser_acc": 56.0}}
    for name in ("a", "b"):
        plot_robustness(summaries, paper, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf",
                        repo / "styles" / "laserflow.mplstyle")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").stat().st_size > 10_000
