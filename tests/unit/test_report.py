"""Tables and figures from synthetic result files with known values."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from laserflow import figures, report
from laserflow.paper import read_paper_table
from laserflow.records import read_selections

REPO = Path(__file__).resolve().parents[2]

matplotlib.use("Agg")
PAPER = read_paper_table(REPO / "data" / "paper" / "table1.csv")


def selection(model, base, laser, chosen, dataset="counterfact", priors=None):
    record = {
        "model": model, "dataset": dataset, "candidates": 18,
        "base": {"test": {"n": 80, "acc": base[0], "logloss": base[1]}, "val": {"n": 20, "acc": 1.0, "logloss": 9.0}},
        "laser": {"test": {"n": 80, "acc": laser[0], "logloss": laser[1]}, "val": {"n": 20, "acc": 30.0, "logloss": 4.5}},
        "chosen": chosen,
    }
    if priors is not None:
        record["baselines"] = {
            kind: {"choice": choice, "val": {"n": 20, "acc": 50.0}, "test": {"n": 80, "acc": acc}}
            for kind, choice, acc in zip(("majority", "minority"), ("true", "false"), priors)
        }
    return record


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


GPTJ = selection("gptj", (13.1, 5.78), (23.0, 5.1), {"tau": "fc_in", "layer": 27, "rho": 0.01, "rate": 9.9})
ROBERTA = selection("roberta", (17.0, 5.9), (17.5, 5.8), {"tau": "fc_out", "layer": 3, "rho": 0.4, "rate": 6.0})
LLAMA_FEVER = selection("llama2", (60.0, 1.0), (66.5, 0.9), {"tau": "fc_in", "layer": 30, "rho": 0.2, "rate": 8.0},
                        dataset="fever", priors=(55.0, 45.0))
TINY = selection("tiny_gptj", (1.0, 7.0), (4.0, 6.5), {"tau": "fc_in", "layer": 1, "rho": 0.8, "rate": 2.0})


def test_table1_csv_and_markdown_hold_the_selected_numbers(tmp_path):
    selections = [
        selection("roberta", (17.3, 5.78), (19.25, 5.431), {"tau": "fc_in", "layer": 8, "rho": 0.8, "rate": 2.0}),
        selection("gptj", (13.1, 5.78), (24.0, 5.05), {"tau": "fc_in", "layer": 27, "rho": 0.01, "rate": 9.9}),
    ]
    report.write_table1(selections, tmp_path / "t.csv", tmp_path / "t.md", paper=None, tolerance=2.0)
    with open(tmp_path / "t.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == ["gptj", "roberta"]
    assert rows[1]["laser_test_acc"] == "19.25" and rows[1]["laser_test_logloss"] == "5.431"
    assert (rows[0]["tau"], rows[0]["layer"], rows[0]["rho"], rows[0]["rate"]) == ("fc_in", "27", "0.01", "9.9")
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[2] == "| counterfact | gptj | 13.1 (5.78) | 24.0 (5.05) | (fc_in, 27, 0.01) |"
    assert lines[3] == "| counterfact | roberta | 17.3 (5.78) | 19.2 (5.43) | (fc_in, 8, 0.8) |"


def run(tau, layer, rho, loss, val_acc=10.0, part="all"):
    """A run summary; ``part`` validation: the search scored the validation part only (loss there)."""
    metrics = {"val": {"acc": val_acc, "logloss": loss + 100}, "test": {"acc": 10.0, "logloss": loss}}
    if part == "validation":
        metrics = {"val": {"acc": val_acc, "logloss": loss}}
    return {"edits": [{"intervention": "laser", "tau": tau, "layer": layer, "rho": rho}], "metrics": metrics}


def test_sweep_figure_has_one_panel_per_tau_and_the_base_line(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    base = {"model": "m", "dataset": "d", "metrics": {"test": {"logloss": 5.5}}}
    runs = [run(tau, layer, rho, 5.0 + layer / 10 + rho) for tau in ("fc_in", "fc_out")
            for layer in range(4) for rho in (0.8, 0.01)]
    closed = []
    monkeypatch.setattr(plt, "close", closed.append)
    figures.plot_sweep(base, runs, tmp_path / "f.png", tmp_path / "f.pdf")
    (figure,) = closed
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["MLP input (fc_in)", "MLP output (fc_out)"]
    for ax in axes:
        drawn = [line for line in ax.get_lines() if len(line.get_xdata())]  # seaborn adds empty legend proxies
        assert len(drawn) == 3  # two ρ lines and the dashed base
        assert sorted(list(line.get_xdata()) for line in drawn if line.get_linestyle() != "--") == [[0, 1, 2, 3]] * 2
        dashed = [line for line in drawn if line.get_linestyle() == "--"]
        assert list(dashed[0].get_ydata()) == [5.5, 5.5]
    assert (tmp_path / "f.png").stat().st_size > 5000 and (tmp_path / "f.pdf").stat().st_size > 5000


def test_a_validation_only_search_plots_validation_loss_and_says_so(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    base = {"model": "m", "dataset": "d", "metrics": {"test": {"logloss": 5.5}, "val": {"logloss": 4.5}}}
    runs = [run("fc_in", layer, rho, 5.0 + layer / 10 + rho, part="validation") for layer in range(2) for rho in (0.8, 0.01)]
    closed = []
    monkeypatch.setattr(plt, "close", closed.append)
    figures.plot_sweep(base, runs, tmp_path / "f.png", tmp_path / "f.pdf")
    (figure,) = closed
    (ax,) = figure.get_axes()
    assert ax.get_ylabel() == "validation log-loss" and "validation log-loss" in figure._suptitle.get_text()
    drawn = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert sorted(list(line.get_ydata()) for line in drawn if line.get_linestyle() != "--") == [
        [5.0 + layer / 10 + rho for layer in range(2)] for rho in (0.01, 0.8)]
    assert [list(line.get_ydata()) for line in drawn if line.get_linestyle() == "--"] == [[4.5, 4.5]]


def test_sweep_figure_without_laser_runs_is_an_error(tmp_path):
    base = {"model": "m", "dataset": "d", "metrics": {"test": {"logloss": 5.5}}}
    with pytest.raises(report.LaserflowError, match="no LASER runs for m/d to plot"):
        figures.plot_sweep(base, [], tmp_path / "f.png", tmp_path / "f.pdf")
    assert not (tmp_path / "f.png").exists()


def test_the_paper_table_holds_the_published_cells():
    assert len(PAPER) == 24
    assert {dataset for dataset, _ in PAPER} == {
        "counterfact", "hotpotqa", "fever", "bios_gender", "bios_profession", "truthfulqa",
        "bigbench_epistemic", "bigbench_wikidata"}
    assert {model for _, model in PAPER} == {"roberta", "gptj", "llama2"}
    gptj = PAPER[("counterfact", "gptj")]
    assert (gptj["base_acc"], gptj["base_loss"], gptj["laser_acc"], gptj["laser_loss"]) == (13.1, 5.78, 24.0, 5.05)
    assert (gptj["tau"], gptj["layer"], gptj["rho"]) == ("fc_in", 27, 0.01)
    assert PAPER[("bios_profession", "llama2")]["tau"] == "fc_out"
    # Every published choice is an MLP matrix and a ρ of the paper's 9-value grid.
    assert {cell["tau"] for cell in PAPER.values()} == {"fc_in", "fc_out"}
    assert {cell["rho"] for cell in PAPER.values()} <= {0.9, 0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.01, 0.005}


@pytest.mark.parametrize("text, message", [
    ("dataset,model\n", "the header must be dataset,model,base_acc"),
    ("dataset,model,base_acc,base_loss,laser_acc,laser_loss,tau,layer,rho\nfever,gptj,50.2,x,56.2,1.27,fc_in,24,0.01\n",
     "line 2: a number is missing or malformed"),
    ("dataset,model,base_acc,base_loss,laser_acc,laser_loss,tau,layer,rho\n"
     "fever,gptj,50.2,1.24,56.2,1.27,fc_in,24,0.01\nfever,gptj,50.2,1.24,56.2,1.27,fc_in,24,0.01\n",
     "line 3: a second row for fever/gptj"),
])
def test_a_bad_paper_table_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "paper.csv"
    path.write_text(text)
    with pytest.raises(report.LaserflowError, match=f"^{path}: {message}"):
        read_paper_table(path)


def test_table1_puts_the_paper_cell_beside_ours_and_marks_the_reproduced_gains(tmp_path):
    paths = [tmp_path / name for name in ("t.csv", "t.md", "t.tex")]
    report.write_table1([TINY, ROBERTA, LLAMA_FEVER, GPTJ], *paths[:2], tex_path=paths[2], paper=PAPER, tolerance=1.5)
    rows = {row["model"]: row for row in read_csv(paths[0])}
    assert list(rows) == ["gptj", "roberta", "tiny_gptj", "llama2"]  # by (dataset, model)
    gptj = rows["gptj"]
    # Ours: 13.1 -> 23.0 (gain 9.9); the paper: 13.1 -> 24.0 (gain 10.9).
    assert (gptj["gain"], gptj["paper_gain"], gptj["gain_diff"], gptj["laser_acc_diff"]) == ("9.9", "10.9", "-1", "-1")
    assert (gptj["paper_tau"], gptj["paper_layer"], gptj["paper_rho"], gptj["reproduced"]) == ("fc_in", "27", "0.01", "yes")
    assert gptj["majority_test_acc"] == ""  # CounterFact is open-ended
    # RoBERTa: gain 0.5 against the paper's 2.0 -> 1.5 points apart, inside a tolerance of 1.5.
    assert (rows["roberta"]["gain_diff"], rows["roberta"]["reproduced"]) == ("-1.5", "yes")
    # Llama-2 FEVER: gain 6.5 against 5.2 (59.3 -> 64.5); majority class from the selection file.
    llama2 = rows["llama2"]
    assert (llama2["gain_diff"], llama2["reproduced"], llama2["majority_test_acc"], llama2["minority_test_acc"]) == (
        "1.3", "yes", "55", "45")
    assert (llama2["majority_choice"], llama2["minority_choice"]) == ("true", "false")
    assert {rows["tiny_gptj"][key] for key in ("paper_base_acc", "paper_gain", "reproduced", "majority_test_acc")} == {""}
    markdown = paths[1].read_text().splitlines()
    assert markdown[0] == "| dataset | model | base acc (loss) | LASER acc (loss) | (τ, ℓ, ρ) |"
    assert "| counterfact | gptj | +9.9 | 13.1 (5.78) | 24.0 (5.05) | (fc_in, 27, 0.01) | +10.9 | -1.0 | – | yes |" in markdown
    assert "| fever | llama2 | +6.5 | 59.3 (1.02) | 64.5 (0.91) | (fc_in, 30, 0.2) | +5.2 | +1.3 | 55.0 / 45.0 | yes |" in markdown
    assert "| counterfact | tiny_gptj | +3.0 | – | – | – | – | – | – | – |" in markdown
    latex = paths[2].read_text().splitlines()
    assert latex[2] == r"\begin{tabular}{llccccccccc}" and latex[-1] == r"\end{tabular}"
    assert latex[6] == (r"CounterFact & GPT-J & 13.1 (5.78) & 23.0 (5.10) & ($U_{\mathrm{in}}$, 27, 0.01) & "
                        r"13.1 (5.78) & 24.0 (5.05) & ($U_{\mathrm{in}}$, 27, 0.01) & -1.0 & -- & yes \\")
    assert latex[8] == (r" & tiny\_gptj & 1.0 (7.00) & 4.0 (6.50) & ($U_{\mathrm{in}}$, 1, 0.8) & -- & -- & -- & -- & -- & -- \\")
    assert latex[9:11] == [r"\hline", r"FEVER & Llama-2 & 60.0 (1.00) & 66.5 (0.90) & ($U_{\mathrm{in}}$, 30, 0.2) & "
                                      r"59.3 (1.02) & 64.5 (0.91) & ($U_{\mathrm{in}}$, 30, 0.2) & +1.3 & 55.0 / 45.0 & yes \\"]


def test_a_gain_outside_the_tolerance_is_not_reproduced(tmp_path):
    rows = report.write_table1([ROBERTA], tmp_path / "t.csv", tmp_path / "t.md", paper=PAPER, tolerance=1.0)
    assert rows[0]["reproduced"] == "no" and read_csv(tmp_path / "t.csv")[0]["reproduced"] == "no"


def test_hyperparameter_table_holds_the_choice_and_its_validation_numbers(tmp_path):
    paths = [tmp_path / name for name in ("h.csv", "h.md", "h.tex")]
    report.write_hyperparameters([ROBERTA, GPTJ], *paths)
    rows = read_csv(paths[0])
    assert [(row["model"], row["tau"], row["layer"], row["rho"], row["rate"]) for row in rows] == [
        ("gptj", "fc_in", "27", "0.01", "9.9"), ("roberta", "fc_out", "3", "0.4", "6")]
    assert (rows[0]["val_acc"], rows[0]["val_logloss"], rows[0]["base_val_acc"], rows[0]["candidates"]) == (
        "30", "4.5", "1", "18")
    assert paths[1].read_text().splitlines()[2] == (
        "| counterfact | gptj | fc_in | 27 | 0.01 | 30.0 (4.50) | 1.0 (9.00) | 18 |")
    latex = paths[2].read_text().splitlines()
    assert latex[6:8] == [r"CounterFact & GPT-J & $U_{\mathrm{in}}$ & 27 & 0.01 & 30.0 (4.50) & 1.0 (9.00) & 18 \\",
                          r" & RoBERTa & $U_{\mathrm{out}}$ & 3 & 0.4 & 30.0 (4.50) & 1.0 (9.00) & 18 \\"]


def test_number_macros_quote_the_largest_and_mean_gain(tmp_path):
    report.write_numbers([TINY, ROBERTA, LLAMA_FEVER, GPTJ], tmp_path / "n.tex", PAPER, 1.5)
    text = (tmp_path / "n.tex").read_text()
    macros = dict(re.findall(r"^\\newcommand\{\\(\w+)\}\{(.*)\}$", text, re.MULTILINE))
    assert len(macros) == len(text.splitlines()) - 2  # every line but the two comments is a macro
    # Gains: GPT-J 9.9, RoBERTa 0.5, tiny 3.0, Llama-2 FEVER 6.5.
    assert macros["lfCells"] == "4" and macros["lfCellsImproved"] == "4"
    assert macros["lfMeanGain"] == "5.0"  # (9.9 + 0.5 + 3.0 + 6.5) / 4 = 4.975
    assert (macros["lfMaxGain"], macros["lfMaxGainModel"], macros["lfMaxGainDataset"]) == ("9.9", "GPT-J", "CounterFact")
    assert (macros["lfMaxGainBase"], macros["lfMaxGainLaser"], macros["lfMaxGainLayer"], macros["lfMaxGainRho"]) == (
        "13.1", "23.0", "27", "0.01")
    assert macros["lfMaxGainTau"] == r"$U_{\mathrm{in}}$"
    assert (macros["lfCellsCompared"], macros["lfCellsReproduced"], macros["lfTolerance"]) == ("3", "3", "1.5")
    assert macros["lfPaperMeanGain"] == "6.0"  # (10.9 + 2.0 + 5.2) / 3 = 6.033
    assert float(macros["lfMeanLossChange"]) == pytest.approx((-0.68 - 0.1 - 0.1 - 0.5) / 4, abs=0.006)


def test_a_selection_file_without_a_needed_key_is_one_line_naming_it(tmp_path):
    broken = json.loads(json.dumps(GPTJ))
    del broken["laser"]["test"]["acc"]
    path = tmp_path / "selection.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(report.LaserflowError) as err:
        read_selections([path])
    assert str(err.value) == f"{path}: key 'laser.test.acc' is missing"


def test_provenance_lists_the_recorded_versions(tmp_path):
    bases = [{"model": model, "dataset": "counterfact",
              "provenance": {"device": "cuda", "dtype": "float16", "software": {"torch": "2.13.0", "laserflow": "0.1.0"}}}
             for model in ("llama2", "gptj")]
    report.write_provenance(bases, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text().splitlines() == [
        "dataset,model,device,dtype,torch,laserflow",
        "counterfact,gptj,cuda,float16,2.13.0,0.1.0",
        "counterfact,llama2,cuda,float16,2.13.0,0.1.0",
    ]


def capture_figure(monkeypatch):
    import matplotlib.pyplot as plt

    closed = []
    monkeypatch.setattr(plt, "close", closed.append)
    return closed


def test_sweep_figure_has_the_papers_six_panels_and_one_line_per_reduction(tmp_path, monkeypatch):
    closed = capture_figure(monkeypatch)
    taus = ["fc_out", "fc_in", "out_proj", "v_proj", "q_proj", "k_proj"]  # not in the paper's order
    rhos = [0.9, 0.5, 0.0025]
    base = {"model": "gptj", "dataset": "counterfact", "metrics": {"test": {"logloss": 5.78}}}
    runs = [run(tau, layer, rho, 5.0 + layer + rho) for tau in taus for layer in range(3) for rho in rhos]
    figures.plot_sweep(base, runs, tmp_path / "f.png", tmp_path / "f.pdf", REPO / "styles" / "laserflow.mplstyle")
    (figure,) = closed
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == [
        "Attention key (k_proj)", "Attention query (q_proj)", "Attention value (v_proj)", "Attention out (out_proj)",
        "MLP input (fc_in)", "MLP output (fc_out)"]
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in axes] == [(2, 3)] * 6
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["10", "50", "99.75", "base"]
    lines = [line for line in axes[4].get_lines() if line.get_linestyle() != "--"]
    assert [list(line.get_ydata()) for line in lines] == [
        [5.9 + layer for layer in range(3)], [5.5 + layer for layer in range(3)], [5.0025 + layer for layer in range(3)]]
    brightness = [sum(matplotlib.colors.to_rgb(line.get_color())) for line in lines]
    assert brightness[0] > brightness[1] > brightness[2]  # light for small reductions, dark for large
    assert (tmp_path / "f.png").stat().st_size > 20000 and (tmp_path / "f.pdf").stat().st_size > 10000


def test_a_figure_drawn_again_has_the_same_bytes(tmp_path, monkeypatch):
    base = {"model": "gptj", "dataset": "counterfact", "metrics": {"test": {"logloss": 5.78}}}
    runs = [run("fc_in", layer, rho, 5.0 + layer + rho) for layer in range(3) for rho in (0.9, 0.5)]
    for name, day in (("a", 0), ("b", 1)):  # drawn on two different days, as far as a PDF date could tell
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(86400 * day))
        figures.plot_sweep(base, runs, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    for ext in ("png", "pdf"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes(), ext


def test_heatmaps_hold_the_validation_accuracy_and_outline_the_choice(tmp_path, monkeypatch):
    from matplotlib.patches import Rectangle

    closed = capture_figure(monkeypatch)
    base = {"model": "m", "dataset": "d", "metrics": {"val": {"acc": 12.0}, "test": {"logloss": 5.0}}}
    runs = [run(tau, layer, rho, 5.0, val_acc=100 * offset + 10 * layer + 100 * (1 - rho))
            for offset, tau in ((0.0, "fc_in"), (0.5, "fc_out")) for layer in range(3) for rho in (0.8, 0.01)]
    chosen = {"chosen": {"tau": "fc_out", "layer": 1, "rho": 0.01}}
    figures.plot_val_heatmaps(base, chosen, runs, tmp_path / "h.png", tmp_path / "h.pdf")
    (figure,) = closed
    panels = [ax for ax in figure.get_axes() if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["MLP input (fc_in)", "MLP output (fc_out)"]
    # Rows: layers 2, 1, 0 from the top; columns: reductions 20%, 99%.
    grid = panels[1].collections[0].get_array().reshape(3, 2)
    np.testing.assert_allclose(grid, [[50 + 20 + 20, 50 + 20 + 99], [50 + 10 + 20, 50 + 10 + 99], [50 + 20, 50 + 99]])
    (outline,) = [patch for patch in panels[1].patches if isinstance(patch, Rectangle)]
    assert outline.get_xy() == (1, 1)  # column 99%, row of layer 1
    assert not [patch for patch in panels[0].patches if isinstance(patch, Rectangle)]
    assert (tmp_path / "h.png").stat().st_size > 20000 and (tmp_path / "h.pdf").stat().st_size > 10000


def test_table1_bars_show_ours_beside_the_paper_with_the_majority_baseline(tmp_path, monkeypatch):
    report.write_table1([TINY, LLAMA_FEVER, GPTJ], tmp_path / "t.csv", tmp_path / "t.md", paper=PAPER, tolerance=2.0)
    closed = capture_figure(monkeypatch)
    figures.plot_table1_bars(tmp_path / "t.csv", tmp_path / "b.png", tmp_path / "b.pdf")
    (figure,) = closed
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["CounterFact", "FEVER"]
    heights = sorted(round(patch.get_height(), 2) for patch in axes[0].patches if patch.get_height() > 0)
    assert heights == [1.0, 4.0, 13.1, 13.1, 23.0, 24.0]  # tiny: no paper bars
    assert [label.get_text() for label in axes[0].get_xticklabels()] == ["GPT-J", "tiny_gptj"]
    assert not axes[0].collections  # CounterFact has no majority class
    (majority,) = axes[1].collections
    assert majority.get_segments()[0][:, 1].tolist() == [55.0, 55.0]
    assert (tmp_path / "b.png").stat().st_size > 20000 and (tmp_path / "b.pdf").stat().st_size > 10000


def test_table1_bars_need_the_table_columns(tmp_path):
    (tmp_path / "t.csv").write_text("dataset,model\ncounterfact,gptj\n")
    with pytest.raises(report.LaserflowError, match="t.csv: column 'majority_test_acc' is missing"):
        figures.plot_table1_bars(tmp_path / "t.csv", tmp_path / "b.png", tmp_path / "b.pdf")
