"""Tables rendered from the collected selection files: Table 1 beside the paper's numbers, the
selected hyperparameters, LaTeX number macros for a paper text, and the software provenance;
and from the robustness files, the spread of the SVD draws beside the exact truncation.

Accuracies are in %, log-losses are mean per-token negative log-likelihoods. A selection file
carries ``baselines.majority`` and ``baselines.minority`` (always answering the validation part's most
and least frequent class, with their test accuracies) for datasets with a fixed answer set; the
table shows them next to the base model, since a base accuracy equal to a class prior (BigBench
epistemic reasoning: 37.05% entailment, 62.95% non-entailment) means the model always answers
one class. Open-ended datasets leave them out.
"""

from __future__ import annotations

import os
from statistics import fmean, stdev

from .io import LaserflowError, atomic_path, lookup, write_text
from .paper import dataset_name, model_name

TABLE1_COLUMNS = [
    "dataset", "model", "n_test",
    "base_test_acc", "base_test_logloss", "laser_test_acc", "laser_test_logloss",
    "tau", "layer", "rho", "rate", "laser_val_acc", "laser_val_logloss",
    "gain", "majority_choice", "majority_test_acc", "minority_choice", "minority_test_acc",
    "paper_base_acc", "paper_base_logloss", "paper_laser_acc", "paper_laser_logloss",
    "paper_tau", "paper_layer", "paper_rho", "paper_gain", "laser_acc_diff", "gain_diff", "reproduced",
    "base_file", "laser_file",
]
HYPERPARAMETER_COLUMNS = [
    "dataset", "model", "tau", "layer", "rho", "rate",
    "val_acc", "val_logloss", "base_val_acc", "base_val_logloss", "n_val", "candidates",
]
ROBUSTNESS_COLUMNS = [
    "dataset", "model", "candidate", "tau", "layer", "rho", "rate", "draws", "niter",
    "base_test_acc", "exact_val_acc", "exact_test_acc", "exact_test_logloss",
    "draw_test_acc_mean", "draw_test_acc_sd", "draw_test_acc_min", "draw_test_acc_max",
    "draw_test_logloss_mean", "draw_val_acc_mean", "distance_mean", "distance_max", "selected_fraction",
    "paper_laser_acc", "paper_tau", "paper_layer", "paper_rho", "paper_in_draw_range", "file",
]
BLANK = "–"


def _optional(record: dict, dotted: str):
    try:
        return lookup(record, dotted)
    except KeyError:
        return None


def table1_rows(selections: list[dict], paper: dict | None, tolerance: float) -> list[dict]:
    """One row per (dataset, model): our test numbers, the paper's cell (when it has one) and
    whether our LASER gain is within ``tolerance`` accuracy points of the paper's."""
    rows = []
    for sel in sorted(selections, key=lambda s: (s["dataset"], s["model"])):
        chosen = sel["chosen"]
        row = {
            "dataset": sel["dataset"],
            "model": sel["model"],
            "n_test": sel["base"]["test"]["n"],
            "base_test_acc": sel["base"]["test"]["acc"],
            "base_test_logloss": sel["base"]["test"]["logloss"],
            "laser_test_acc": sel["laser"]["test"]["acc"],
            "laser_test_logloss": sel["laser"]["test"]["logloss"],
            "tau": chosen["tau"],
            "layer": chosen["layer"],
            "rho": chosen["rho"],
            "rate": chosen.get("rate"),
            "laser_val_acc": sel["laser"]["val"]["acc"],
            "laser_val_logloss": sel["laser"]["val"]["logloss"],
            "gain": sel["laser"]["test"]["acc"] - sel["base"]["test"]["acc"],
            "majority_choice": _optional(sel, "baselines.majority.choice"),
            "majority_test_acc": _optional(sel, "baselines.majority.test.acc"),
            "minority_choice": _optional(sel, "baselines.minority.choice"),
            "minority_test_acc": _optional(sel, "baselines.minority.test.acc"),
            # The result files the row comes from (each carries its full provenance).
            "base_file": _optional(sel, "files.base"),
            "laser_file": _optional(sel, "files.chosen"),
        }
        ref = (paper or {}).get((sel["dataset"], sel["model"]))
        if ref is None:
            row |= {column: None for column in TABLE1_COLUMNS if column not in row}
        else:
            paper_gain = ref["laser_acc"] - ref["base_acc"]
            gain_diff = row["gain"] - paper_gain
            row |= {
                "paper_base_acc": ref["base_acc"], "paper_base_logloss": ref["base_loss"],
                "paper_laser_acc": ref["laser_acc"], "paper_laser_logloss": ref["laser_loss"],
                "paper_tau": ref["tau"], "paper_layer": ref["layer"], "paper_rho": ref["rho"],
                "paper_gain": paper_gain,
                "laser_acc_diff": row["laser_test_acc"] - ref["laser_acc"],
                "gain_diff": gain_diff,
                "reproduced": "yes" if round(abs(gain_diff), 9) <= tolerance else "no",
            }
        rows.append(row)
    if not rows:
        raise LaserflowError("no selection results to tabulate")
    return rows


def _write_csv(rows: list[dict], columns: list[str], path: str | os.PathLike) -> None:
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False, float_format="%.6g")


def _num(value, spec: str, blank: str = BLANK) -> str:
    return blank if value is None else format(value, spec)


def _cell(acc, loss, blank: str = BLANK) -> str:
    return blank if acc is None else f"{acc:.1f} ({loss:.2f})"


def _config(tau, layer, rho, blank: str = BLANK, tex: bool = False) -> str:
    if tau is None:
        return blank
    return f"({latex_tau(tau) if tex else tau}, {layer}, {rho:g})"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(char, char) for char in str(text))


def latex_tau(tau: str) -> str:
    """The paper's notation for the MLP matrices (U_in, U_out); other τ as escaped ids."""
    return {"fc_in": r"$U_{\mathrm{in}}$", "fc_out": r"$U_{\mathrm{out}}$"}.get(tau, latex_escape(tau))


def _tabular(header: list[str], body: list[list[str]], groups: list[str], caption: str) -> str:
    """A tabular with an \\hline between groups of rows; ready to \\input (no packages needed)."""
    lines = [f"% {caption}", "% Written by laserflow from the result files; do not edit.",
             r"\begin{tabular}{ll" + "c" * (len(header) - 2) + "}", r"\hline",
             " & ".join(header) + r" \\", r"\hline"]
    for index, cells in enumerate(body):
        if index and groups[index] != groups[index - 1]:
            lines.append(r"\hline")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _first_of_group(rows: list[dict]) -> list[str]:
    """The dataset name on the first row of each dataset group, blank on the others."""
    return [latex_escape(dataset_name(row["dataset"])) if index == 0 or rows[index - 1]["dataset"] != row["dataset"]
            else "" for index, row in enumerate(rows)]


def write_table1(selections: list[dict], csv_path: str | os.PathLike, md_path: str | os.PathLike, *,
                 tex_path: str | os.PathLike | None = None, paper: dict | None, tolerance: float) -> list[dict]:
    """Table 1: base and LASER test accuracy % (log-loss), the chosen (τ, ℓ, ρ), and the paper's
    cell beside ours, as CSV, Markdown and (with ``tex_path``) a LaTeX tabular."""
    rows = table1_rows(selections, paper, tolerance)
    _write_csv(rows, TABLE1_COLUMNS, csv_path)
    lines = [
        "| dataset | model | base acc (loss) | LASER acc (loss) | (τ, ℓ, ρ) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {_cell(row['base_test_acc'], row['base_test_logloss'])} | "
            f"{_cell(row['laser_test_acc'], row['laser_test_logloss'])} | "
            f"{_config(row['tau'], row['layer'], row['rho'])} |"
        )
    lines += [
        "",
        "Test part (last 80%) accuracy in % with mean per-token log-loss in parentheses; "
        "(τ, ℓ, ρ) chosen on the validation part (first 20%).",
        "",
        "| dataset | model | gain | paper base acc (loss) | paper LASER acc (loss) | paper (τ, ℓ, ρ) "
        "| paper gain | Δ gain | class priors (majority / minority) | reproduced |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['gain']:+.1f} | "
            f"{_cell(row['paper_base_acc'], row['paper_base_logloss'])} | "
            f"{_cell(row['paper_laser_acc'], row['paper_laser_logloss'])} | "
            f"{_config(row['paper_tau'], row['paper_layer'], row['paper_rho'])} | "
            f"{_num(row['paper_gain'], '+.1f')} | {_num(row['gain_diff'], '+.1f')} | "
            f"{_priors(row)} | {row['reproduced'] or BLANK} |"
        )
    lines += [
        "",
        f"Gain = LASER − base test accuracy (points); Δ gain = our gain − the paper's; reproduced = "
        f"|Δ gain| ≤ {tolerance:g} points. Class priors: test accuracy of always answering the "
        f"validation part's most / least frequent class. {BLANK} = no paper cell for this (dataset, model), "
        "or no classes (open-ended dataset).",
    ]
    write_text(md_path, "\n".join(lines) + "\n")
    if tex_path is not None:
        names = _first_of_group(rows)
        body = [[
            names[index], latex_escape(model_name(row["model"])),
            _cell(row["base_test_acc"], row["base_test_logloss"]),
            _cell(row["laser_test_acc"], row["laser_test_logloss"]),
            _config(row["tau"], row["layer"], row["rho"], tex=True),
            _cell(row["paper_base_acc"], row["paper_base_logloss"], "--"),
            _cell(row["paper_laser_acc"], row["paper_laser_logloss"], "--"),
            _config(row["paper_tau"], row["paper_layer"], row["paper_rho"], "--", tex=True),
            _num(row["gain_diff"], "+.1f", "--"), _priors(row, "--"),
            row["reproduced"] or "--",
        ] for index, row in enumerate(rows)]
        header = ["Dataset", "Model", "Base", "LASER", r"$(\tau, \ell, \rho)$", "Paper base", "Paper LASER",
                  r"Paper $(\tau, \ell, \rho)$", r"$\Delta$ gain", "Priors", "Reproduced"]
        caption = (f"Table 1: test accuracy % (log-loss), ours beside the paper's; reproduced = "
                   f"|Delta gain| <= {tolerance:g} points")
        write_text(tex_path, _tabular(header, body, [row["dataset"] for row in rows], caption))
    return rows


def _priors(row: dict, blank: str = BLANK) -> str:
    """Majority / minority class test accuracy, e.g. "63.0 / 37.0"."""
    if row["majority_test_acc"] is None:
        return blank
    return f"{row['majority_test_acc']:.1f} / {row['minority_test_acc']:.1f}"


def hyperparameter_rows(selections: list[dict]) -> list[dict]:
    """The chosen (τ, ℓ, ρ) per (dataset, model) with the validation numbers that chose it."""
    rows = [{
        "dataset": sel["dataset"], "model": sel["model"],
        "tau": sel["chosen"]["tau"], "layer": sel["chosen"]["layer"],
        "rho": sel["chosen"]["rho"], "rate": sel["chosen"].get("rate"),
        "val_acc": sel["laser"]["val"]["acc"], "val_logloss": sel["laser"]["val"]["logloss"],
        "base_val_acc": sel["base"]["val"]["acc"], "base_val_logloss": sel["base"]["val"]["logloss"],
        "n_val": sel["laser"]["val"]["n"], "candidates": sel["candidates"],
    } for sel in sorted(selections, key=lambda s: (s["dataset"], s["model"]))]
    if not rows:
        raise LaserflowError("no selection results to tabulate")
    return rows


def write_hyperparameters(selections: list[dict], csv_path: str | os.PathLike, md_path: str | os.PathLike,
                          tex_path: str | os.PathLike) -> list[dict]:
    """The selected-hyperparameters table (the paper's Table 3) as CSV, Markdown and LaTeX."""
    rows = hyperparameter_rows(selections)
    _write_csv(rows, HYPERPARAMETER_COLUMNS, csv_path)
    lines = ["| dataset | model | τ | ℓ | ρ | validation acc (loss) | base validation acc (loss) | candidates |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['tau']} | {row['layer']} | {row['rho']:g} | "
            f"{_cell(row['val_acc'], row['val_logloss'])} | {_cell(row['base_val_acc'], row['base_val_logloss'])} | "
            f"{row['candidates']} |"
        )
    lines += ["", "Chosen on the validation part (first 20%): highest accuracy, ties broken by lower "
              "log-loss, then by the original's sweep order; candidates = LASER configurations compared."]
    write_text(md_path, "\n".join(lines) + "\n")
    names = _first_of_group(rows)
    body = [[names[index], latex_escape(model_name(row["model"])), latex_tau(row["tau"]), str(row["layer"]),
             f"{row['rho']:g}", _cell(row["val_acc"], row["val_logloss"]),
             _cell(row["base_val_acc"], row["base_val_logloss"]), str(row["candidates"])]
            for index, row in enumerate(rows)]
    header = ["Dataset", "Model", r"$\tau$", r"$\ell$", r"$\rho$", "Val. acc (loss)", "Base val. acc (loss)",
              "Candidates"]
    write_text(tex_path, _tabular(header, body, [row["dataset"] for row in rows],
                                  "Selected hyperparameters and the validation accuracy % (log-loss) that chose them"))
    return rows


def number_macros(rows: list[dict], tolerance: float) -> dict[str, str]:
    """Macro name -> value of the numbers a paper text quotes, from Table 1's rows."""
    gains = [row["gain"] for row in rows]
    best = max(rows, key=lambda row: row["gain"])  # the first (dataset, model) wins ties
    compared = [row for row in rows if row["reproduced"] is not None]
    return {
        "lfCells": str(len(rows)),
        "lfCellsImproved": str(sum(gain > 0 for gain in gains)),
        "lfMeanGain": f"{fmean(gains):.1f}",
        "lfMeanLossChange": f"{fmean([row['laser_test_logloss'] - row['base_test_logloss'] for row in rows]):.2f}",
        "lfMaxGain": f"{best['gain']:.1f}",
        "lfMaxGainModel": latex_escape(model_name(best["model"])),
        "lfMaxGainDataset": latex_escape(dataset_name(best["dataset"])),
        "lfMaxGainBase": f"{best['base_test_acc']:.1f}",
        "lfMaxGainLaser": f"{best['laser_test_acc']:.1f}",
        "lfMaxGainTau": latex_tau(best["tau"]),
        "lfMaxGainLayer": str(best["layer"]),
        "lfMaxGainRho": f"{best['rho']:g}",
        "lfCellsCompared": str(len(compared)),
        "lfCellsReproduced": str(sum(row["reproduced"] == "yes" for row in compared)),
        "lfPaperMeanGain": f"{fmean([row['paper_gain'] for row in compared]):.1f}" if compared else "--",
        "lfTolerance": f"{tolerance:g}",
    }


def write_numbers(selections: list[dict], tex_path: str | os.PathLike, paper: dict | None,
                  tolerance: float) -> dict[str, str]:
    """``\\newcommand`` macros of the quoted numbers (accuracy points; gains are LASER − base)."""
    macros = number_macros(table1_rows(selections, paper, tolerance), tolerance)
    lines = ["% Numbers quoted in the text, from Table 1 (test part; accuracy in %, gains in points).",
             "% Written by laserflow from the result files; do not edit."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in macros.items()]
    write_text(tex_path, "\n".join(lines) + "\n")
    return macros


def write_provenance(bases: list[dict], csv_path: str | os.PathLike) -> list[dict]:
    """Per (dataset, model): device, dtype and the software versions its base evaluation ran with."""
    rows = [{"dataset": base["dataset"], "model": base["model"], "device": base["provenance"]["device"],
             "dtype": base["provenance"]["dtype"], **base["provenance"]["software"]}
            for base in sorted(bases, key=lambda b: (b["dataset"], b["model"]))]
    if not rows:
        raise LaserflowError("no base results to record")
    columns = list(dict.fromkeys(column for row in rows for column in row))
    _write_csv(rows, columns, csv_path)
    return rows


def robustness_rows(summaries: list[dict], paper: dict | None) -> list[dict]:
    """One row per (dataset, model, candidate): the exact truncation's numbers, the draws' spread
    (test accuracy mean, sample sd, min and max), the edited matrices' distance to the exact one,
    how often the candidate would be selected under the draws (with several candidates), and
    the paper's LASER accuracy with whether it lies within the draws' range."""
    rows = []
    for summary in sorted(summaries, key=lambda s: (s["dataset"], s["model"])):
        ref = (paper or {}).get((summary["dataset"], summary["model"]))
        under = summary.get("selected_under_draws")
        for candidate in summary["candidates"]:
            draws = candidate["draws"]
            tests = [draw["test"]["acc"] for draw in draws]
            edit = candidate["edit"]
            row = {
                "dataset": summary["dataset"], "model": summary["model"], "candidate": candidate["rank"],
                "tau": edit["tau"], "layer": edit["layer"], "rho": edit["rho"], "rate": edit.get("rate"),
                "draws": len(draws), "niter": summary["niter"], "base_test_acc": summary["base"]["test"]["acc"],
                "exact_val_acc": candidate["exact"]["val"]["acc"], "exact_test_acc": candidate["exact"]["test"]["acc"],
                "exact_test_logloss": candidate["exact"]["test"]["logloss"],
                "draw_test_acc_mean": fmean(tests), "draw_test_acc_sd": stdev(tests) if len(tests) > 1 else None,
                "draw_test_acc_min": min(tests), "draw_test_acc_max": max(tests),
                "draw_test_logloss_mean": fmean(draw["test"]["logloss"] for draw in draws),
                "draw_val_acc_mean": fmean(draw["val"]["acc"] for draw in draws),
                "distance_mean": fmean(draw["distance"] for draw in draws),
                "distance_max": max(draw["distance"] for draw in draws),
                "selected_fraction": under.count(candidate["rank"]) / len(under) if under else None,
                "file": candidate["file"],
            }
            if ref is None:
                row |= {column: None for column in ROBUSTNESS_COLUMNS if column not in row}
            else:
                row |= {"paper_laser_acc": ref["laser_acc"], "paper_tau": ref["tau"], "paper_layer": ref["layer"],
                        "paper_rho": ref["rho"],
                        "paper_in_draw_range": "yes" if min(tests) <= ref["laser_acc"] <= max(tests) else "no"}
            rows.append(row)
    if not rows:
        raise LaserflowError("no robustness results to tabulate")
    return rows


def _spread(row: dict, plus_minus: str = "±") -> str:
    """Mean ± sd of the draws' test accuracy (the mean alone for one draw)."""
    sd = row["draw_test_acc_sd"]
    return f"{row['draw_test_acc_mean']:.2f}" + (f" {plus_minus} {sd:.2f}" if sd is not None else "")


def _paper_laser(row: dict, blank: str = BLANK) -> str:
    """The paper's LASER accuracy, starred where its (τ, ℓ, ρ) is not the redrawn one."""
    if row["paper_laser_acc"] is None:
        return blank
    same = (row["paper_tau"], row["paper_layer"], row["paper_rho"]) == (row["tau"], row["layer"], row["rho"])
    return f"{row['paper_laser_acc']:.1f}" + ("" if same else "*")


def write_robustness(summaries: list[dict], csv_path: str | os.PathLike, md_path: str | os.PathLike,
                     tex_path: str | os.PathLike, paper: dict | None) -> list[dict]:
    """The robustness table as CSV (every candidate), Markdown and LaTeX (the selected
    configuration per cell; Markdown adds the candidates' selection shares when there are several)."""
    rows = robustness_rows(summaries, paper)
    _write_csv(rows, ROBUSTNESS_COLUMNS, csv_path)
    selected = [row for row in rows if row["candidate"] == 1]
    draws = ", ".join(str(count) for count in sorted({row["draws"] for row in rows}))
    niters = " or ".join(str(niter) for niter in sorted({row["niter"] for row in rows}))
    lines = ["| dataset | model | (τ, ℓ, ρ) | base | exact | draws: mean ± sd | draws: min – max | paper LASER "
             "| paper in range | distance |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in selected:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {_config(row['tau'], row['layer'], row['rho'])} | "
            f"{row['base_test_acc']:.2f} | {row['exact_test_acc']:.2f} | {_spread(row)} | "
            f"{row['draw_test_acc_min']:.2f} – {row['draw_test_acc_max']:.2f} | {_paper_laser(row)} | "
            f"{row['paper_in_draw_range'] or BLANK} | {row['distance_mean']:.3f} |"
        )
    lines += ["", f"Test accuracy (%) of each cell's selected configuration: the exact truncated SVD (exact) and "
              f"{draws} draws of the original's randomized SVD (torch.svd_lowrank, q = kept rank, niter {niters}, "
              "seeds 0, 1, …), with the draws' mean ± sample sd and range; base = the unmodified model. Distance = "
              "the drawn matrix's mean relative Frobenius distance to the exact truncation. Paper LASER = the "
              f"paper's Table 1 ({BLANK}: no such cell; * its (τ, ℓ, ρ) differs from the redrawn one); in range = "
              "within the draws' min – max."]
    if any(row["selected_fraction"] is not None for row in rows):
        lines += ["", "| dataset | model | candidate | (τ, ℓ, ρ) | exact val acc | draws: val acc mean "
                  "| selected under the draws |", "|---|---|---|---|---|---|---|"]
        for row in rows:
            if row["selected_fraction"] is not None:
                lines.append(
                    f"| {row['dataset']} | {row['model']} | {row['candidate']} | "
                    f"{_config(row['tau'], row['layer'], row['rho'])} | {row['exact_val_acc']:.2f} | "
                    f"{row['draw_val_acc_mean']:.2f} | {100 * row['selected_fraction']:.0f}% |")
        lines += ["", "The best validation candidates by the selection rule (1 = selected), each redrawn: how often "
                  "the rule would pick it among them if the draw of that seed were the cell's SVD."]
    write_text(md_path, "\n".join(lines) + "\n")
    names = _first_of_group(selected)
    body = [[names[index], latex_escape(model_name(row["model"])), _config(row["tau"], row["layer"], row["rho"], tex=True),
             f"{row['base_test_acc']:.2f}", f"{row['exact_test_acc']:.2f}", _spread(row, "$\\pm$"),
             f"{row['draw_test_acc_min']:.2f}--{row['draw_test_acc_max']:.2f}", _paper_laser(row, "--"),
             row["paper_in_draw_range"] or "--"] for index, row in enumerate(selected)]
    header = ["Dataset", "Model", r"$(\tau, \ell, \rho)$", "Base", "Exact", r"Draws mean $\pm$ sd", "Draws range",
              "Paper LASER", "In range"]
    write_text(tex_path, _tabular(header, body, [row["dataset"] for row in selected],
                                  f"Test accuracy % under the exact SVD and {draws} randomized SVD draws"))
    return rows


# ---------------------------------------------------------------- composition and analysis

COMPOSITION_COLUMNS = [
    "dataset", "model", "n_val", "n_test",
    "base_val_acc", "base_val_logloss", "base_test_acc", "base_test_logloss",
    "laser_tau", "laser_layer", "laser_rho",
    "laser_val_acc", "laser_val_logloss", "laser_test_acc", "laser_test_logloss",
    "composite_val_acc", "composite_val_logloss", "composite_test_acc", "composite_test_logloss",
    "composed_matrices", "composite", "evaluations", "compose_file",
]


def composite_text(edits: list[dict], tex: bool = False) -> str:
    """A composite as its (τ, ℓ, ρ) edits, e.g. "(fc_in, 27, 0.02) (fc_in, 26, 0.1)"; "none" if empty."""
    return " ".join(_config(edit["tau"], edit["layer"], edit["rho"], tex=tex) for edit in edits) or "none"


def composition_rows(composes: list[dict], files: list[str]) -> list[dict]:
    """One row per (dataset, model): base, best single-layer LASER and the greedy composite, each
    on the validation and test parts, with the composite's edits."""
    rows = []
    for compose, path in sorted(zip(composes, files), key=lambda pair: (pair[0]["dataset"], pair[0]["model"])):
        row = {"dataset": compose["dataset"], "model": compose["model"], "n_val": compose["composite"]["val"]["n"],
               "n_test": compose["composite"]["test"]["n"],
               "laser_tau": compose["laser"]["edit"]["tau"], "laser_layer": compose["laser"]["edit"]["layer"],
               "laser_rho": compose["laser"]["edit"]["rho"], "composed_matrices": len(compose["edits"]),
               "composite": composite_text(compose["edits"]), "evaluations": compose["evaluations"],
               "compose_file": path}
        for kind in ("base", "laser", "composite"):
            for part in ("val", "test"):
                row[f"{kind}_{part}_acc"] = compose[kind][part]["acc"]
                row[f"{kind}_{part}_logloss"] = compose[kind][part]["logloss"]
        rows.append(row)
    if not rows:
        raise LaserflowError("no composition results to tabulate")
    return rows


def _parts(row: dict, kind: str) -> str:
    """Validation / test accuracy (log-loss) of one column kind, e.g. "20.0 (8.50) / 18.1 (8.56)"."""
    return (f"{_cell(row[f'{kind}_val_acc'], row[f'{kind}_val_logloss'])} / "
            f"{_cell(row[f'{kind}_test_acc'], row[f'{kind}_test_logloss'])}")


def write_composition_table(composes: list[dict], files: list[str], csv_path: str | os.PathLike,
                            md_path: str | os.PathLike, tex_path: str | os.PathLike) -> list[dict]:
    """The composition table: per cell, base, best single-layer LASER and greedy composite as
    validation / test accuracy % (log-loss), with the composite's edits; CSV, Markdown, LaTeX."""
    rows = composition_rows(composes, files)
    _write_csv(rows, COMPOSITION_COLUMNS, csv_path)
    lines = _markdown_table(
        ["dataset", "model", "base", "best single layer (τ, ℓ, ρ)", "LASER", "composite", "composite edits (τ, ℓ, ρ)"],
        [[row["dataset"], row["model"], _parts(row, "base"),
          _config(row["laser_tau"], row["laser_layer"], row["laser_rho"]), _parts(row, "laser"),
          _parts(row, "composite"), row["composite"]] for row in rows])
    lines += ["", "Validation / test accuracy % (mean per-token log-loss). The best single layer is the "
              "cell's selected LASER configuration; the composite is the greedy search's, chosen on the "
              "validation part only."]
    write_text(md_path, "\n".join(lines) + "\n")
    names = _first_of_group(rows)
    body = [[names[index], latex_escape(model_name(row["model"])), _parts(row, "base"),
             _config(row["laser_tau"], row["laser_layer"], row["laser_rho"], tex=True), _parts(row, "laser"),
             _parts(row, "composite"), str(row["composed_matrices"])] for index, row in enumerate(rows)]
    header = ["Dataset", "Model", "Base", r"$(\tau, \ell, \rho)$", "LASER", "Composite", "Edits"]
    write_text(tex_path, _tabular(header, body, [row["dataset"] for row in rows],
                                  "Greedy composition: validation / test accuracy % (log-loss)"))
    return rows


def example_share(shares: list[float]) -> float:
    """The bottom-only share the corrections table shows: the largest below 1 (1 is the matrix itself)."""
    below = [share for share in shares if share < 1]
    return max(below) if below else max(shares)


def correction_rows(analysis: dict, predictions: list[dict]) -> list[dict]:
    """Items LASER gets right and the base model wrong: prompt, gold, and each variant's prediction."""
    names = [variant["variant"] for variant in analysis["variants"]]
    base, laser = names.index("base"), names.index("laser")
    bottoms = [(position, variant["share"]) for position, variant in enumerate(analysis["variants"])
               if variant["variant"] == "bottom"]
    rows = []
    for position, item in enumerate(predictions):
        if item["correct"][laser] and not item["correct"][base]:
            row = {"index": item["index"], "part": "val" if position < analysis["n_val"] else "test",
                   "prompt": item["prompt"], "gold": item["gold"], "base": item["predictions"][base],
                   "laser": item["predictions"][laser]}
            rows.append(row | {f"bottom_{share:g}": item["predictions"][index] for index, share in bottoms})
    return rows


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule and one line per row of cells."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(cells) + " |"
                                                                              for cells in body]


def _markdown_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", r"\|")


def write_corrections_table(analysis: dict, predictions: list[dict], csv_path: str | os.PathLike,
                            md_path: str | os.PathLike, tex_path: str | os.PathLike, examples: int) -> list[dict]:
    """Items where LASER corrects the base model (prompt | gold | base | LASER | bottom-only), the
    paper's Fig. 4c: every such item in the CSV (bottom-only at every share), the first
    ``examples`` in Markdown and LaTeX (bottom-only at ``example_share``)."""
    rows = correction_rows(analysis, predictions)
    shares = [variant["share"] for variant in analysis["variants"] if variant["variant"] == "bottom"]
    columns = ["index", "part", "prompt", "gold", "base", "laser"] + [f"bottom_{share:g}" for share in shares]
    _write_csv(rows, columns, csv_path)
    share = example_share(shares)
    shown = rows[:examples]
    config = analysis["configuration"]
    what = (f"{analysis['model']} on {analysis['dataset']}: LASER ({config['tau']}, {config['layer']}, "
            f"{config['rho']:g}) against the base model; bottom-only keeps the lowest {100 * share:g}% of the "
            f"singular components")
    lines = _markdown_table(["prompt", "gold", "base", "LASER", "bottom-only"],
                            [[_markdown_text(row[key]) for key in ("prompt", "gold", "base", "laser", f"bottom_{share:g}")]
                             for row in shown])
    lines += ["", f"{what}. {len(rows)} of {analysis['n_items']} items are corrected"
              + (f"; the first {len(shown)} are shown." if len(shown) < len(rows) else ".")]
    write_text(md_path, "\n".join(lines) + "\n")
    body = [[latex_escape(" ".join(str(row[key]).split())) for key in ("prompt", "gold", "base", "laser")]
            + [latex_escape(" ".join(str(row[f"bottom_{share:g}"]).split()))] for row in shown]
    write_text(tex_path, _tabular(["Prompt", "Gold", "Base", "LASER", "Bottom-only"], body, [""] * len(body),
                                  f"Items LASER corrects: {what}"))
    return rows
