"""Table 1 and the sweep figure from synthetic result files with known values."""

from __future__ import annotations

import csv

import matplotlib
import pytest

from laserflow import report

matplotlib.use("Agg")


def selection(model, base, laser, chosen):
    return {
        "model": model, "dataset": "counterfact",
        "base": {"test": {"n": 80, "acc": base[0], "logloss": base[1]}, "val": {"n": 20, "acc": 1.0, "logloss": 9.0}},
        "laser": {"test": {"n": 80, "acc": laser[0], "logloss": laser[1]}, "val": {"n": 20, "acc": 30.0, "logloss": 4.5}},
        "chosen": chosen,
    }


def test_table1_csv_and_markdown_hold_the_selected_numbers(tmp_path):
    selections = [
        selection("roberta", (17.3, 5.78), (19.25, 5.431), {"tau": "fc_in", "layer": 8, "rho": 0.8, "rate": 2.0}),
        selection("gptj", (13.1, 5.78), (24.0, 5.05), {"tau": "fc_in", "layer": 27, "rho": 0.01, "rate": 9.9}),
    ]
    report.write_table1(selections, tmp_path / "t.csv", tmp_path / "t.md")
    with open(tmp_path / "t.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["model"] for row in rows] == ["gptj", "roberta"]
    assert rows[1]["laser_test_acc"] == "19.25" and rows[1]["laser_test_logloss"] == "5.431"
    assert (rows[0]["tau"], rows[0]["layer"], rows[0]["rho"], rows[0]["rate"]) == ("fc_in", "27", "0.01", "9.9")
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[2] == "| counterfact | gptj | 13.1 (5.78) | 24.0 (5.05) | (fc_in, 27, 0.01) |"
    assert lines[3] == "| counterfact | roberta | 17.3 (5.78) | 19.2 (5.43) | (fc_in, 8, 0.8) |"


def run(tau, layer, rho, loss):
    return {"edits": [{"intervention": "laser", "tau": tau, "layer": layer, "rho": rho}],
            "metrics": {"test": {"acc": 10.0, "logloss": loss}}}


def test_sweep_figure_has_one_panel_per_tau_and_the_base_line(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    base = {"model": "m", "dataset": "d", "metrics": {"test": {"logloss": 5.5}}}
    runs = [run(tau, layer, rho, 5.0 + layer / 10 + rho) for tau in ("fc_in", "fc_out")
            for layer in range(4) for rho in (0.8, 0.01)]
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    report.plot_sweep(base, runs, tmp_path / "f.png", tmp_path / "f.pdf")
    (figure,) = figures
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["fc_in", "fc_out"]
    for ax in axes:
        drawn = [line for line in ax.get_lines() if len(line.get_xdata())]  # seaborn adds empty legend proxies
        assert len(drawn) == 3  # two ρ lines and the dashed base
        assert sorted(list(line.get_xdata()) for line in drawn if line.get_linestyle() != "--") == [[0, 1, 2, 3]] * 2
        dashed = [line for line in drawn if line.get_linestyle() == "--"]
        assert list(dashed[0].get_ydata()) == [5.5, 5.5]
    assert (tmp_path / "f.png").stat().st_size > 5000 and (tmp_path / "f.pdf").stat().st_size > 5000


def test_sweep_figure_without_laser_runs_is_an_error(tmp_path):
    base = {"model": "m", "dataset": "d", "metrics": {"test": {"logloss": 5.5}}}
    with pytest.raises(report.LaserflowError, match="no LASER runs for m/d to plot"):
        report.plot_sweep(base, [], tmp_path / "f.png", tmp_path / "f.pdf")
    assert not (tmp_path / "f.png").exists()
