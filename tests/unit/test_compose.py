"""Greedy composition: the intended algorithm (not the original's always-true loop and no-op revert),
exact reverts, a reference run on a tiny model, and the composition figure and table."""

from __future__ import annotations

import csv

import matplotlib
import pytest
import torch

from laserflow import figures, report
from laserflow.compose import ComposePaths, CompositeScorer, Scored, greedy, run_composition
from laserflow.edits import Edit, Level
from laserflow.evaluate import run_configuration
from laserflow.io import LaserflowError, read_json, read_jsonl, write_json, write_jsonl
from laserflow.laser import apply_edits, restore_weights, svd_factors
from laserflow.models import load_model
from laserflow.scoring import score_items
from laserflow.selection import select_files, split_metrics, validation_size
from laserflow.settings import EvaluationPaths, EvaluationSettings, ScoringOptions
from laserflow.svd import compute_svd, load_svd_cache
from laserflow.sweep import ComposePlan

matplotlib.use("Agg")
OPTIONS = ScoringOptions(batch_size=16, show_progress=False)


def table_evaluator(table):
    """``evaluate`` reading (acc, loss) from ``table``, keyed by the composite's {(layer, reduction)};
    the keys it was asked for, in order."""
    calls = []

    def evaluate(edits):
        key = frozenset((edit.layer, round(1 - edit.level.rho, 10)) for edit in edits)
        calls.append(key)
        acc, loss = table[key]
        return Scored({"n": 10, "acc": acc, "logloss": loss})

    return evaluate, calls


def test_a_step_that_lowers_validation_accuracy_is_reverted_and_the_next_layer_builds_on_the_kept_one():
    plan = ComposePlan(taus=("fc_in",), layers=(2, 1, 0), steps=(0.0, 0.45, 0.9))
    table = {
        frozenset(): (40.0, 2.0),
        frozenset({(2, 0.45)}): (50.0, 1.9),  # kept: higher accuracy
        frozenset({(2, 0.9)}): (30.0, 1.0),  # reverted: lower accuracy, whatever its loss
        frozenset({(2, 0.45), (1, 0.45)}): (50.0, 1.8),  # kept: same accuracy, lower loss
        frozenset({(2, 0.45), (1, 0.9)}): (50.0, 1.85),  # reverted: same accuracy, higher loss
        frozenset({(2, 0.45), (1, 0.45), (0, 0.45)}): (50.0, 1.8),  # reverted: a full tie does not improve
    }
    evaluate, calls = table_evaluator(table)
    composition = greedy(plan, evaluate, show_progress=False)
    assert [(step.matrix, step.reduction, step.accepted) for step in composition.steps] == [
        (None, 0.0, True), (("fc_in", 2), 0.45, True), (("fc_in", 2), 0.9, False),
        (("fc_in", 1), 0.45, True), (("fc_in", 1), 0.9, False), (("fc_in", 0), 0.45, False)]
    # Layer 1 was tried on top of layer 2 at 0.45, not at the rejected 0.9: the revert is real.
    assert calls[3] == frozenset({(2, 0.45), (1, 0.45)})
    assert composition.edits == [Edit("laser", "fc_in", 2, Level(rho=1 - 0.45)),
                                 Edit("laser", "fc_in", 1, Level(rho=1 - 0.45))]
    # The original's loop would have pushed every layer to the last step; none is there.
    assert all(round(1 - edit.level.rho, 10) != 0.9 for edit in composition.edits)


def test_nothing_kept_leaves_the_unmodified_model_and_its_records():
    plan = ComposePlan(taus=("fc_in",), layers=(1,), steps=(0.0, 0.5))
    calls = []

    def evaluate(edits):
        calls.append(edits)
        return Scored({"n": 2, "acc": 50.0 - 10 * len(edits), "logloss": 1.0}, records=[{"edits": len(edits)}])

    composition = greedy(plan, evaluate, show_progress=False)
    assert composition.edits == [] and composition.val_records == [{"edits": 0}]
    assert [step.accepted for step in composition.steps] == [True, False]


def test_restoring_gives_back_the_exact_base_weights(tiny_models):
    model, _, family = load_model(tiny_models["gptj"])
    base = {name: value.clone() for name, value in model.state_dict().items()}
    scorer = CompositeScorer(model, None, family, [], OPTIONS, "counterfact", {})
    composites = [
        [Edit("laser", "fc_in", 2, Level(rho=0.1))],
        [Edit("laser", "fc_in", 2, Level(rho=0.5)), Edit("laser", "fc_out", 0, Level(rho=0.02))],
        [Edit("laser", "fc_in", 1, Level(rho=0.3))],
    ]
    for edits in composites:
        scorer.apply(edits)
        touched = {name for edit in edits for name in family.parameter_names(edit.tau, edit.layer)}
        changed = {name for name, value in model.state_dict().items() if not torch.equal(value, base[name])}
        assert changed == touched  # each composite edits its own matrices and nothing else
    scorer.apply([])
    assert all(torch.equal(value, base[name]) for name, value in model.state_dict().items())
    restore_weights(model, apply_edits(model, family, composites[1]))
    assert all(torch.equal(value, base[name]) for name, value in model.state_dict().items())


@pytest.fixture(scope="module")
def composed(tiny_models, demo_items, tmp_path_factory):
    """A composition job on the tiny GPT-J (layers 2, 1, 0 at 0.5, 0.9, 0.98 removed) over 90
    CounterFact items, with the sweep files it reads made by the sweep's own functions."""
    root = tmp_path_factory.mktemp("compose")
    model_dir = str(tiny_models["gptj"])
    dataset = root / "counterfact.jsonl"
    write_jsonl(dataset, demo_items[:90])
    settings = EvaluationSettings(model="tiny", dataset="counterfact", scoring=OPTIONS)
    plan = ComposePlan(taus=("fc_in",), layers=(2, 1, 0), steps=(0.0, 0.5, 0.9, 0.98))
    svd = []
    for layer in plan.layers:
        svd.append(str(root / f"svd{layer}.pt"))
        compute_svd(model_dir, "fc_in", layer, svd[-1])
    runs = []
    for name, edits, files in (("base", [], ()), ("run", [Edit("laser", "fc_in", 2, Level(rate=9.0))], (svd[0],))):
        runs.append(str(root / f"{name}.json"))
        run_configuration(settings, edits, EvaluationPaths(model_dir, str(dataset), runs[-1],
                                                           str(root / f"{name}.items.jsonl.gz"), svd=files))
    select_files(runs[0], runs[1:], str(root / "selection.json"))
    paths = ComposePaths(model=model_dir, dataset=str(dataset), manifest=None, selection=str(root / "selection.json"),
                         svd=tuple(svd), steps=str(root / "steps.jsonl"), summary=str(root / "compose.json"),
                         records=str(root / "compose.items.jsonl.gz"))
    summary = run_composition(settings, plan, paths)
    return {"summary": summary, "paths": paths, "plan": plan, "items": demo_items[:90], "model": model_dir}


def reference_greedy(model_dir, items, plan):
    """The greedy search written plainly: a freshly loaded model and a fresh SVD per candidate."""
    def evaluate(reductions):
        model, tokenizer, family = load_model(model_dir)
        edits = [Edit("laser", "fc_in", layer, Level(rho=1 - value)) for layer, value in reductions.items()]
        for edit in edits:
            (name,) = family.parameter_names(edit.tau, edit.layer)
            apply_edits(model, family, [edit], {name: svd_factors(dict(model.named_parameters())[name].data)})
        records = score_items(model, tokenizer, family, items, OPTIONS)
        return split_metrics(records, len(records))["val"]

    kept, best = {}, evaluate({})
    sequence = []
    for layer in plan.layers:
        for value in plan.steps[1:]:
            val = evaluate(kept | {layer: value})
            accepted = val["acc"] > best["acc"] or (val["acc"] == best["acc"] and val["logloss"] < best["logloss"])
            sequence.append((layer, value, accepted, val))
            if not accepted:
                break
            kept, best = kept | {layer: value}, val
    return sequence, kept


def test_the_search_equals_a_plain_reference_greedy_run(composed):
    n_val = validation_size(len(composed["items"]))
    sequence, kept = reference_greedy(composed["model"], composed["items"][:n_val], composed["plan"])
    steps = read_jsonl(composed["paths"].steps)
    assert [(step["layer"], step["reduction"], step["accepted"], step["val"]) for step in steps[1:]] == sequence
    assert {True, False} <= {accepted for _, _, accepted, _ in sequence}  # the run keeps some steps and reverts others
    final = [(edit["layer"], edit["rho"]) for edit in composed["summary"]["edits"]]
    assert final == [(layer, round(1 - value, 10)) for layer, value in kept.items()]
    for step in steps[1:]:  # every step holds the whole composite it scored
        assert step["edits"][-1]["layer"] == step["layer"]


def test_the_composite_numbers_equal_a_fresh_evaluation_of_the_final_edits(composed):
    summary, items = composed["summary"], composed["items"]
    n_val = summary["n_val"]
    model, tokenizer, family = load_model(composed["model"])
    edits = [Edit("laser", edit["tau"], edit["layer"], Level(rho=edit["rho"])) for edit in summary["edits"]]
    assert edits  # the run keeps at least one edit, so the check below tests a composite
    factors = load_svd_cache(composed["paths"].svd)
    apply_edits(model, family, edits, factors)
    fresh = (score_items(model, tokenizer, family, items[:n_val], OPTIONS)
             + score_items(model, tokenizer, family, items[n_val:], OPTIONS))
    assert read_jsonl(composed["paths"].records) == fresh
    metrics = split_metrics(fresh, n_val)
    assert (summary["composite"]["val"], summary["composite"]["test"]) == (metrics["val"], metrics["test"])


def test_the_summary_puts_the_cells_base_and_best_single_layer_beside_the_composite(composed):
    summary, paths = composed["summary"], composed["paths"]
    selection = read_json(paths.selection)
    assert summary["base"]["val"] == selection["base"]["val"] and summary["laser"]["test"] == selection["laser"]["test"]
    assert summary["laser"]["edit"] == selection["chosen"]
    assert summary["base"]["items_file"].endswith("base.items.jsonl.gz")
    steps = read_jsonl(paths.steps)
    assert steps[0]["edits"] == [] and steps[0]["val"] == selection["base"]["val"]  # the search starts from the base
    assert summary["evaluations"] == len(steps)
    assert summary["plan"] == {"taus": ["fc_in"], "layers": [2, 1, 0], "steps": [0.0, 0.5, 0.9, 0.98]}


def test_a_selection_made_on_another_validation_part_is_one_line_and_writes_nothing(composed, tmp_path):
    from dataclasses import replace

    selection = read_json(composed["paths"].selection) | {"n_val": 12}
    write_json(tmp_path / "selection.json", selection)
    paths = replace(composed["paths"], selection=str(tmp_path / "selection.json"), steps=str(tmp_path / "steps.jsonl"),
                    summary=str(tmp_path / "compose.json"), records=str(tmp_path / "compose.items.jsonl.gz"))
    with pytest.raises(LaserflowError) as err:
        run_composition(EvaluationSettings(model="tiny", dataset="counterfact", scoring=OPTIONS), composed["plan"], paths)
    assert str(err.value) == f"{tmp_path / 'selection.json'}: selected on 12 validation items; composition validates on 18"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["selection.json"]


# ---------------------------------------------------------------- figure and table


def compose_record(model, dataset, edits, base, laser, composite, layers=(2, 1, 0)):
    def part(acc, loss, n):
        return {"n": n, "acc": acc, "logloss": loss}

    return {"model": model, "dataset": dataset, "plan": {"taus": ["fc_in"], "layers": list(layers)},
            "edits": [{"tau": "fc_in", "layer": layer, "rho": rho} for layer, rho in edits], "evaluations": 6,
            "base": {"val": part(*base[0], 20), "test": part(*base[1], 80)},
            "laser": {"edit": {"tau": "fc_in", "layer": 2, "rho": 0.01},
                      "val": part(*laser[0], 20), "test": part(*laser[1], 80)},
            "composite": {"val": part(*composite[0], 20), "test": part(*composite[1], 80)}}


def step(layer, acc, accepted):
    return {"step": 0, "layer": layer, "val": {"acc": acc, "logloss": 1.0}, "accepted": accepted}


def test_composition_figure_draws_the_kept_curve_every_step_and_the_reference_lines(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    closed = []
    monkeypatch.setattr(plt, "close", closed.append)
    compose = compose_record("m", "d", [(2, 0.1)], ((10.0, 5.0), (9.0, 5.0)), ((15.0, 4.0), (12.0, 4.0)),
                             ((25.0, 3.0), (20.0, 3.0)))
    steps = [step(None, 10.0, True), step(2, 20.0, True), step(2, 25.0, True), step(1, 5.0, False),
             step(0, 24.0, False)]
    figures.plot_composition(compose, steps, tmp_path / "c.png", tmp_path / "c.pdf")
    (figure,) = closed
    (ax,) = figure.get_axes()
    curve, laser, base = ax.get_lines()
    assert list(curve.get_xdata()) == [0, 1, 2, 3] and list(curve.get_ydata()) == [10.0, 25.0, 25.0, 25.0]
    assert list(laser.get_ydata()) == [15.0, 15.0] and list(base.get_ydata()) == [10.0, 10.0]
    kept, reverted = ax.collections
    assert kept.get_offsets().tolist() == [[1, 20.0], [1, 25.0]]
    assert reverted.get_offsets().tolist() == [[2, 5.0], [3, 24.0]]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "composite (kept)", "step kept", "step reverted", "best single layer (fc_in, 2, 0.01)", "base"]
    assert (tmp_path / "c.png").stat().st_size > 10000 and (tmp_path / "c.pdf").stat().st_size > 5000


def test_composition_table_holds_base_laser_and_composite_per_cell(tmp_path):
    records = [compose_record("gptj", "fever", [(2, 0.1), (0, 0.55)], ((60.0, 0.7), (55.0, 0.8)),
                              ((65.0, 0.6), (56.0, 0.75)), ((70.0, 0.5), (58.0, 0.72))),
               compose_record("gptj", "counterfact", [], ((10.0, 5.0), (9.0, 5.5)), ((12.0, 4.5), (11.0, 4.9)),
                              ((10.0, 5.0), (9.0, 5.5)))]
    files = ["fever/compose.json", "counterfact/compose.json"]
    report.write_composition_table(records, files, tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "t.tex")
    with open(tmp_path / "t.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["dataset"] for row in rows] == ["counterfact", "fever"]
    fever = rows[1]
    assert (fever["composite_val_acc"], fever["composite_test_logloss"], fever["laser_test_acc"]) == ("70", "0.72", "56")
    assert (fever["composed_matrices"], fever["composite"], fever["compose_file"]) == (
        "2", "(fc_in, 2, 0.1) (fc_in, 0, 0.55)", "fever/compose.json")
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[2] == ("| counterfact | gptj | 10.0 (5.00) / 9.0 (5.50) | (fc_in, 2, 0.01) | 12.0 (4.50) / 11.0 (4.90) "
                        "| 10.0 (5.00) / 9.0 (5.50) | none |")
    assert r"GPT-J & 60.0 (0.70) / 55.0 (0.80) & ($U_{\mathrm{in}}$, 2, 0.01)" in (tmp_path / "t.tex").read_text()
