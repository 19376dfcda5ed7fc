"""The higher-order components analysis: bottom-k matrices from the cached factors, per-item
predictions against a one-item-at-a-time reference, the generic-answer share, the cosine
similarity across prompts, and the figure and table of corrected items."""

from __future__ import annotations

import contextlib
import csv

import matplotlib
import numpy as np
import pytest
import torch

from laserflow import figures, report
from laserflow.analysis import (AnalysisPaths, analysed_edit, bottom_count, bottom_weight, generic_answers,
                                generic_share, mean_pairwise_cosine, run_analysis)
from laserflow.edits import Edit, Level
from laserflow.io import LaserflowError, read_jsonl, write_json, write_jsonl
from laserflow.laser import svd_factors, truncate
from laserflow.models import load_model
from laserflow.paths import SVD
from laserflow.settings import EvaluationSettings, ScoringOptions
from laserflow.svd import compute_svd

matplotlib.use("Agg")
OPTIONS = ScoringOptions(batch_size=16, show_progress=False)


@pytest.mark.parametrize("share, rank, count", [(0.1, 256, 26), (0.25, 250, 63), (0.5, 5, 3), (1.0, 128, 128),
                                                (0.9, 4096, 3686), (0.004, 128, 1)])
def test_the_bottom_share_rounds_half_up(share, rank, count):
    assert bottom_count(share, rank) == count


def test_a_share_that_keeps_no_component_is_one_line():
    with pytest.raises(LaserflowError) as err:
        bottom_count(0.003, 128)
    assert str(err.value) == "analysis.shares: a share of 0.003 of rank 128 keeps no component"


def weight(shape=(48, 32), seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_all_of_the_bottom_components_is_the_matrix_itself():
    w = weight()
    assert torch.equal(bottom_weight(w, svd_factors(w), 32), w)


@pytest.mark.parametrize("rank", [1, 5, 16, 31])
def test_top_r_and_bottom_n_minus_r_sum_to_the_matrix(rank):
    w = weight()
    factors = svd_factors(w)
    bottom = bottom_weight(w, factors, 32 - rank)
    torch.testing.assert_close(truncate(factors, rank) + bottom, w, rtol=0, atol=1e-5)
    # The bottom part is the matrix of the last singular components: its singular values are S[r:].
    u, s, vh = np.linalg.svd(w.numpy().astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(bottom.numpy(), (u[:, rank:] * s[rank:]) @ vh[rank:], rtol=0, atol=1e-4)
    np.testing.assert_allclose(torch.linalg.svdvals(bottom)[:32 - rank].numpy(), s[rank:], rtol=0, atol=1e-4)


def test_mean_pairwise_cosine_is_the_mean_over_distinct_pairs():
    hidden = weight((7, 5), seed=3)
    hidden[2] = 0  # a zero vector has cosine 0 with everything
    units = torch.nn.functional.normalize(hidden.double(), dim=1)
    gram = (units @ units.T).numpy()
    expected = (gram.sum() - np.trace(gram)) / (7 * 6)
    assert mean_pairwise_cosine(hidden) == pytest.approx(expected, abs=1e-12)
    assert mean_pairwise_cosine(torch.ones(4, 3)) == pytest.approx(1.0)
    with pytest.raises(LaserflowError, match="needs two items; the dataset has 1"):
        mean_pairwise_cosine(hidden[:1])


def test_generic_answers_are_the_base_models_most_frequent_predictions():
    base = [" the", "The", " Paris", " of", " the", " Paris", " of", " Rome"]
    # "the" 3, then "paris" and "of" twice each (first seen first), "rome" once.
    assert generic_answers(base, 2) == ["the", "paris"]
    assert generic_answers(base, 10) == ["the", "paris", "of", "rome"]
    assert generic_share([" THE ", " of", " Tokyo", " Paris"], ["the", "paris"]) == 50.0


@pytest.fixture(scope="module")
def analysed(tiny_models, demo_items, tmp_path_factory):
    """An analysis job on the tiny GPT-J's fc_in of layer 1 (ρ 0.1) over 24 CounterFact items."""
    root = tmp_path_factory.mktemp("analysis")
    model_dir = str(tiny_models["gptj"])
    dataset = root / "counterfact.jsonl"
    write_jsonl(dataset, demo_items[:24])
    factors = SVD.format(model="tiny", tau="fc_in", layer=1)
    compute_svd(model_dir, "fc_in", 1, root / factors)
    paths = AnalysisPaths(model=model_dir, dataset=str(dataset), manifest=None, svd=(factors,),
                          summary=str(root / "analysis.json"), records=str(root / "analysis.items.jsonl.gz"))
    block = {"configuration": {"tau": "fc_in", "layer": 1, "rho": 0.1}, "shares": [0.25, 0.5, 1.0], "generic_top": 3}
    settings = EvaluationSettings(model="tiny", dataset="counterfact", scoring=OPTIONS)
    with contextlib.chdir(root):  # the factors file is named relative to the working directory, as in the workflow
        summary = run_analysis(settings, block, paths)
    return {"summary": summary, "records": read_jsonl(paths.records), "items": demo_items[:24], "model": model_dir}


def reference_weight(w: torch.Tensor, variant: dict) -> torch.Tensor | None:
    """The variant's matrix from a float64 numpy SVD: LASER's top components or the bottom ones."""
    u, s, vh = np.linalg.svd(w.numpy().astype(np.float64), full_matrices=False)
    if variant["variant"] == "base":
        return None
    (kept,) = variant["components"].values()
    part = slice(0, kept) if variant["variant"] == "laser" else slice(len(s) - kept, len(s))
    return torch.from_numpy((u[:, part] * s[part]) @ vh[part]).float()


def test_predictions_equal_one_item_at_a_time_with_independently_built_matrices(analysed):
    summary, records, items = analysed["summary"], analysed["records"], analysed["items"]
    assert [variant["variant"] for variant in summary["variants"]] == ["base", "laser", "bottom", "bottom", "bottom"]
    assert [variant["components"] for variant in summary["variants"][1:]] == [
        {"transformer.h.1.mlp.fc_in.weight": count} for count in (12, 32, 64, 128)]  # rank 128, ρ 0.1
    model, tokenizer, _ = load_model(analysed["model"])
    param = dict(model.named_parameters())["transformer.h.1.mlp.fc_in.weight"]
    original = param.data.clone()
    for position, variant in enumerate(summary["variants"]):
        new = reference_weight(original, variant)
        param.data.copy_(original if new is None else new)
        predictions, correct, hidden = [], [], []
        with torch.inference_mode():  # one item per forward pass: the top-1 next token after the question
            for item in items:
                state = model.base_model(**tokenizer(item["question"], return_tensors="pt")).last_hidden_state[0, -1]
                predictions.append(tokenizer.decode([int(model.lm_head(state).argmax())]))
                correct.append(predictions[-1].lower().strip() == item["answer"].lower().strip())
                hidden.append(state)
        assert [record["predictions"][position] for record in records] == predictions
        assert [record["correct"][position] for record in records] == correct
        assert variant["mean_cosine"] == pytest.approx(mean_pairwise_cosine(torch.stack(hidden)), abs=1e-5)
    base, whole = summary["variants"][0], summary["variants"][-1]
    assert whole["share"] == 1.0 and whole["metrics"] == base["metrics"] and whole["mean_cosine"] == base["mean_cosine"]


def test_the_summary_names_the_generic_answers_and_each_variants_share(analysed):
    summary, records = analysed["summary"], analysed["records"]
    generic = generic_answers([record["predictions"][0] for record in records], 3)
    assert summary["generic"]["answers"] == generic and summary["generic"]["top"] == 3
    for position, variant in enumerate(summary["variants"]):
        assert variant["generic_share"] == generic_share([record["predictions"][position] for record in records], generic)
    assert records[0]["prompt"] == analysed["items"][0]["question"] and records[0]["gold"] == analysed["items"][0]["answer"]


def test_the_selected_configuration_comes_from_the_cells_selection(tmp_path):
    write_json(tmp_path / "selection.json", {
        "model": "m", "dataset": "d", "candidates": 2,
        "chosen": {"intervention": "laser", "tau": "fc_out", "layer": 2, "level": "rate9.9", "rho": 0.01, "rate": 9.9},
        "base": {"val": {"acc": 1, "logloss": 1}, "test": {"n": 8, "acc": 1, "logloss": 1}},
        "laser": {"val": {"n": 2, "acc": 1, "logloss": 1}, "test": {"acc": 1, "logloss": 1}}})
    paths = AnalysisPaths("m", "d", None, (), "s", "r", selection=str(tmp_path / "selection.json"))
    assert analysed_edit("selected", paths) == Edit("laser", "fc_out", 2, Level(rate=9.9))
    assert analysed_edit({"tau": "fc_in", "layer": 1, "rho": 0.5}, paths) == Edit("laser", "fc_in", 1, Level(rho=0.5))


def test_an_analysed_matrix_without_its_svd_file_is_one_line(tmp_path):
    paths = AnalysisPaths("model", "items.jsonl", None, ("resources/svd/tiny/fc_in/2.pt",), str(tmp_path / "a.json"),
                          str(tmp_path / "a.items.jsonl.gz"))
    block = {"configuration": {"tau": "fc_in", "layer": 1, "rho": 0.1}, "shares": [1.0], "generic_top": 3}
    with pytest.raises(LaserflowError) as err:
        run_analysis(EvaluationSettings(model="tiny", dataset="counterfact"), block, paths)
    assert str(err.value) == ("resources/svd/tiny/fc_in/1.pt: the SVD factors of the analysed matrix are not among "
                              "the job's inputs")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- figure and table


def analysis_record():
    def variant(name, share, acc, generic, cosine):
        return {"variant": name, "share": share, "metrics": {"all": {"acc": acc}}, "generic_share": generic,
                "mean_cosine": cosine}

    return {"model": "gptj", "dataset": "counterfact", "n_items": 5, "n_val": 2,
            "configuration": {"tau": "fc_in", "layer": 27, "rho": 0.01},
            "variants": [variant("base", None, 13.0, 40.0, 0.5), variant("laser", None, 20.0, 30.0, 0.4),
                         variant("bottom", 0.1, 2.0, 80.0, 0.9), variant("bottom", 0.5, 5.0, 60.0, 0.7),
                         variant("bottom", 1.0, 13.0, 40.0, 0.5)]}


def test_analysis_figure_plots_each_measure_against_the_bottom_share(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    closed = []
    monkeypatch.setattr(plt, "close", closed.append)
    figures.plot_analysis(analysis_record(), tmp_path / "a.png", tmp_path / "a.pdf")
    (figure,) = closed
    axes = figure.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["accuracy (%)", "generic answers (%)", "mean pairwise cosine"]
    expected = {"accuracy (%)": ([2.0, 5.0, 13.0], 20.0, 13.0), "generic answers (%)": ([80.0, 60.0, 40.0], 30.0, 40.0),
                "mean pairwise cosine": ([0.9, 0.7, 0.5], 0.4, 0.5)}
    for ax in axes:
        bottom, laser, base = ax.get_lines()
        assert list(bottom.get_xdata()) == [10.0, 50.0, 100.0]
        values, laser_value, base_value = expected[ax.get_ylabel()]
        assert list(bottom.get_ydata()) == values
        assert list(laser.get_ydata()) == [laser_value] * 2 and list(base.get_ydata()) == [base_value] * 2
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [
        "bottom components only", "LASER (fc_in, 27, 0.01)", "base"]
    assert (tmp_path / "a.png").stat().st_size > 10000 and (tmp_path / "a.pdf").stat().st_size > 5000


def test_corrections_table_lists_the_items_laser_corrects(tmp_path):
    def item(index, prompt, gold, predictions, correct):
        return {"index": index, "prompt": prompt, "gold": gold, "predictions": predictions, "correct": correct}

    predictions = [
        item(0, "The capital of France is", " Paris", [" the", " Paris", " the", " of", " the"], [0, 1, 0, 0, 0]),
        item(1, "Kharkiv is a twin city of", " Warsaw", [" Warsaw", " Warsaw", " The", " the", " Warsaw"], [1, 1, 0, 0, 1]),
        item(2, "A | B speaks", " Hebrew", [" To", " Hebrew", " To", " Hebrew", " To"], [0, 1, 0, 1, 0]),
        item(3, "Abba Eban was employed in", " Jerusalem", [" The", " the", " The", " The", " The"], [0, 0, 0, 0, 0]),
        item(4, "Kalabhra follows the religion of", " Buddhism", [" Hindu", " Buddhism", " Hindu", " Hindu", " Hindu"],
             [0, 1, 0, 0, 0]),
    ]
    report.write_corrections_table(analysis_record(), predictions, tmp_path / "c.csv", tmp_path / "c.md",
                                   tmp_path / "c.tex", examples=2)
    with open(tmp_path / "c.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["index"], row["part"]) for row in rows] == [("0", "val"), ("2", "test"), ("4", "test")]
    assert list(rows[1].values()) == ["2", "test", "A | B speaks", " Hebrew", " To", " Hebrew", " To", " Hebrew", " To"]
    assert list(rows[1]) == ["index", "part", "prompt", "gold", "base", "laser", "bottom_0.1", "bottom_0.5", "bottom_1"]
    lines = (tmp_path / "c.md").read_text().splitlines()
    # Bottom-only at the largest share below 100% (50% here); the first two of three corrected items.
    assert lines[:4] == ["| prompt | gold | base | LASER | bottom-only |", "|---|---|---|---|---|",
                         "| The capital of France is | Paris | the | Paris | of |",
                         r"| A \| B speaks | Hebrew | To | Hebrew | Hebrew |"]
    assert "3 of 5 items are corrected; the first 2 are shown." in lines[-1]
    assert "lowest 50% of the singular components" in lines[-1]
    tex = (tmp_path / "c.tex").read_text()
    assert r"The capital of France is & Paris & the & Paris & of \\" in tex

