"""Figures rendered from the collected run, selection and table files, each as PNG and PDF.

Panels follow the paper's sweep figure: one per matrix type τ *present in the runs*, in the
paper's order (attention key, query, value, out, MLP input, MLP output, then any other τ); a τ
the configuration did not sweep gets no panel rather than an empty one.
"""

from __future__ import annotations

import math
import os

from .io import LaserflowError, atomic_path
from .paper import TAU_TITLES, dataset_name, model_name

BAR_COLOURS = {"base": "#525252", "LASER": "#d94801", "paper base": "#bdbdbd", "paper LASER": "#fdae6b"}
ROBUSTNESS_COLOURS = {"draws": "#2171b5", "exact": "#d94801", "paper LASER": "#238b45", "base": "black"}
TABLE1_BAR_COLUMNS = {"base": "base_test_acc", "LASER": "laser_test_acc",
                      "paper base": "paper_base_acc", "paper LASER": "paper_laser_acc"}


def _pyplot(style: str | os.PathLike | None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if style:
        plt.style.use(str(style))
    return plt


def _save(plt, fig, png_path: str | os.PathLike, pdf_path: str | os.PathLike) -> None:
    """PNG and PDF, byte for byte the same on a rerun (no creation date in the PDF)."""
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    with atomic_path(pdf_path) as tmp:
        fig.savefig(tmp, format="pdf", dpi=150, bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)


def _panels(plt, count: int, width: float, height: float, **kwargs):
    """A figure with ``count`` panels, at most three per row (unused grid cells removed)."""
    ncols = min(3, count)
    nrows = math.ceil(count / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.remove()
    return fig, axes[:count]


def tau_title(tau: str) -> str:
    return f"{TAU_TITLES[tau]} ({tau})" if tau in TAU_TITLES else tau


def panel_order(taus) -> list[str]:
    """The τ present, in the paper's panel order, then the others in order of appearance."""
    present = list(dict.fromkeys(taus))
    paper = [tau for tau in TAU_TITLES if tau in present]
    return paper + [tau for tau in present if tau not in TAU_TITLES]


def reduction(rho: float) -> float:
    """The paper's "reduction %" of a kept-rank fraction ρ: 100·(1 − ρ)."""
    return round(100 * (1 - rho), 6)


def laser_frame(base: dict, runs: list[dict]):
    """One row per single-edit LASER run: τ, layer, reduction % = 100·(1 − ρ), validation
    accuracy, and the log-loss of the part every run scored (``part``: test, or validation when
    the search scored validation only)."""
    import pandas as pd

    records = []
    for run in runs:
        if len(run["edits"]) != 1 or run["edits"][0]["intervention"] != "laser":
            continue
        edit = run["edits"][0]
        records.append({"tau": edit["tau"], "layer": edit["layer"], "reduction": reduction(edit["rho"]),
                        "val_acc": run["metrics"]["val"]["acc"], "val_logloss": run["metrics"]["val"]["logloss"],
                        "test_logloss": run["metrics"].get("test", {}).get("logloss")})
    if not records:
        raise LaserflowError(f"no LASER runs for {base['model']}/{base['dataset']} to plot")
    frame = pd.DataFrame.from_records(records)
    part = "test" if frame["test_logloss"].notna().all() else "validation"
    frame["logloss"] = frame["test_logloss" if part == "test" else "val_logloss"]
    frame.attrs["part"] = part
    return frame


def plot_sweep(base: dict, runs: list[dict], png_path: str | os.PathLike, pdf_path: str | os.PathLike,
               style: str | os.PathLike | None = None) -> None:
    """The paper's per-layer sweep figure: test log-loss (validation log-loss when the search scored
    validation only) against layer, one line per reduction percentage (light = small, dark =
    large), one panel per τ, the base model's loss on the same part dashed."""
    plt = _pyplot(style)
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    frame = laser_frame(base, runs)
    taus = panel_order(frame["tau"])
    reductions = sorted(frame["reduction"].unique())
    colours = dict(zip(reductions, sns.color_palette("magma_r", n_colors=len(reductions) + 1)[1:]))
    fig, axes = _panels(plt, len(taus), 4.2, 3.4, sharey=True)
    part = frame.attrs["part"]
    base_loss = base["metrics"]["test" if part == "test" else "val"]["logloss"]
    for ax, tau in zip(axes, taus):
        panel = frame[frame["tau"] == tau]
        for reduction in reductions:
            line = panel[panel["reduction"] == reduction].sort_values("layer")
            if len(line):
                ax.plot(line["layer"].to_numpy(), line["logloss"].to_numpy(), color=colours[reduction],
                        marker="o", markersize=3, linewidth=1.2)
        ax.axhline(base_loss, color="black", linestyle="--", linewidth=1)
        ax.set_title(tau_title(tau))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_ylabel(f"{part} log-loss")
    handles = [Line2D([], [], color=colours[r], marker="o", markersize=3) for r in reductions]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1))
    fig.legend(handles, [f"{r:g}" for r in reductions] + ["base"], title="reduction %",
               loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"{base['model']} · {base['dataset']}: {part} log-loss under LASER")
    fig.tight_layout()
    _save(plt, fig, png_path, pdf_path)


def plot_val_heatmaps(base: dict, selection: dict, runs: list[dict], png_path: str | os.PathLike,
                      pdf_path: str | os.PathLike, style: str | os.PathLike | None = None) -> None:
    """Validation accuracy (%) over layer × reduction %, one panel per τ on one colour scale;
    the selected configuration is outlined."""
    plt = _pyplot(style)
    import seaborn as sns
    from matplotlib.patches import Rectangle

    frame = laser_frame(base, runs)
    taus = panel_order(frame["tau"])
    reductions = sorted(frame["reduction"].unique())
    layers = sorted(frame["layer"].unique(), reverse=True)  # layer 0 at the bottom
    annotate = len(reductions) * len(layers) <= 120
    fig, axes = _panels(plt, len(taus), max(3.2, 0.35 * len(reductions) + 1.4),
                        max(2.6, 0.17 * len(layers) + 1.2), layout="constrained")
    chosen = selection["chosen"]
    low, high = frame["val_acc"].min(), frame["val_acc"].max()
    if low == high:  # one colour scale needs a range
        low, high = low - 0.5, high + 0.5
    for ax, tau in zip(axes, taus):
        grid = (frame[frame["tau"] == tau]
                .pivot_table(index="layer", columns="reduction", values="val_acc")
                .reindex(index=layers, columns=reductions))
        sns.heatmap(grid, ax=ax, vmin=low, vmax=high, cmap="viridis", annot=annotate, fmt=".1f", cbar=False,
                    xticklabels=[f"{r:g}" for r in reductions], yticklabels=math.ceil(len(layers) / 16))
        ax.grid(False)
        ax.tick_params(axis="y", labelrotation=0)
        if chosen["tau"] == tau:
            column = reductions.index(reduction(chosen["rho"]))
            ax.add_patch(Rectangle((column, layers.index(chosen["layer"])), 1, 1, fill=False,
                                   edgecolor="red", linewidth=2))
        ax.set_title(tau_title(tau))
        ax.set_xlabel("reduction %")
        ax.set_ylabel("layer")
    fig.colorbar(axes[0].collections[0], ax=axes, label="validation accuracy (%)", shrink=0.8)
    fig.suptitle(f"{base['model']} · {base['dataset']}: validation accuracy (%); "
                 f"base {base['metrics']['val']['acc']:.1f}, selected outlined")
    _save(plt, fig, png_path, pdf_path)


def plot_table1_bars(table_path: str | os.PathLike, png_path: str | os.PathLike, pdf_path: str | os.PathLike,
                     style: str | os.PathLike | None = None) -> None:
    """Table 1 as bars: base, LASER, paper base and paper LASER test accuracy per model, one panel
    per dataset; the majority-class accuracy as a dashed segment where the dataset has one."""
    import pandas as pd

    plt = _pyplot(style)
    import seaborn as sns
    from matplotlib.patches import Patch

    table = pd.read_csv(table_path)
    for column in ["dataset", "model", "majority_test_acc", *TABLE1_BAR_COLUMNS.values()]:
        if column not in table.columns:
            raise LaserflowError(f"{table_path}: column '{column}' is missing")
    if table.empty:
        raise LaserflowError(f"{table_path}: no rows to plot")
    long = (table.melt(id_vars=["dataset", "model"], value_vars=list(TABLE1_BAR_COLUMNS.values()),
                       var_name="column", value_name="acc")
            .dropna(subset=["acc"]))
    long["kind"] = long["column"].map({column: kind for kind, column in TABLE1_BAR_COLUMNS.items()})
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = _panels(plt, len(datasets), max(3.0, 1.1 * table.groupby("dataset").size().max() + 1.0), 3.0,
                        sharey=True)
    for ax, dataset in zip(axes, datasets):
        models = list(table.loc[table["dataset"] == dataset, "model"])
        sns.barplot(data=long[long["dataset"] == dataset], x="model", y="acc", hue="kind", order=models,
                    hue_order=list(BAR_COLOURS), palette=BAR_COLOURS, legend=False, ax=ax)
        majority = table[table["dataset"] == dataset].set_index("model")["majority_test_acc"]
        for index, model in enumerate(models):
            if pd.notna(majority[model]):
                ax.hlines(majority[model], index - 0.4, index + 0.4, colors="black", linestyles="--", linewidth=1)
        ax.set_xticks(range(len(models)), [model_name(model) for model in models])
        ax.set_title(dataset_name(dataset))
        ax.set_xlabel("")
        ax.set_ylabel("test accuracy (%)")
    handles = [Patch(color=colour, label=kind) for kind, colour in BAR_COLOURS.items()]
    handles.append(plt.Line2D([], [], color="black", linestyle="--", linewidth=1, label="majority class"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("Table 1: test accuracy, ours beside the paper's")
    fig.tight_layout()
    _save(plt, fig, png_path, pdf_path)


def plot_robustness(summaries: list[dict], paper: dict | None, png_path: str | os.PathLike,
                    pdf_path: str | os.PathLike, style: str | os.PathLike | None = None) -> None:
    """One panel per cell: the selected configuration's test accuracy under each randomized SVD
    draw (points, by seed), the exact truncation's and the paper's LASER accuracy (lines) and the
    base model's (dashed)."""
    plt = _pyplot(style)
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not summaries:
        raise LaserflowError("no robustness results to plot")
    cells = sorted(summaries, key=lambda s: (s["dataset"], s["model"]))
    refs = [(paper or {}).get((summary["dataset"], summary["model"])) for summary in cells]
    fig, axes = _panels(plt, len(cells), 3.6, 3.0)
    for ax, summary, ref in zip(axes, cells, refs):
        selected = summary["candidates"][0]
        draws = selected["draws"]
        sns.scatterplot(x=[draw["seed"] for draw in draws], y=[draw["test"]["acc"] for draw in draws], ax=ax,
                        color=ROBUSTNESS_COLOURS["draws"], s=30, zorder=3)
        ax.axhline(selected["exact"]["test"]["acc"], color=ROBUSTNESS_COLOURS["exact"], linewidth=1.5)
        if ref is not None:
            ax.axhline(ref["laser_acc"], color=ROBUSTNESS_COLOURS["paper LASER"], linestyle=":", linewidth=1.5)
        ax.axhline(summary["base"]["test"]["acc"], color=ROBUSTNESS_COLOURS["base"], linestyle="--", linewidth=1)
        edit = selected["edit"]
        ax.set_title(f"{model_name(summary['model'])} · {dataset_name(summary['dataset'])}\n"
                     f"({edit['tau']}, {edit['layer']}, {edit['rho']:g})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("draw (seed)")
        ax.set_ylabel("test accuracy (%)")
    legend = {"randomized SVD draws": Line2D([], [], color=ROBUSTNESS_COLOURS["draws"], marker="o", linestyle=""),
              "exact SVD": Line2D([], [], color=ROBUSTNESS_COLOURS["exact"], linewidth=1.5),
              "paper LASER": Line2D([], [], color=ROBUSTNESS_COLOURS["paper LASER"], linestyle=":", linewidth=1.5),
              "base": Line2D([], [], color=ROBUSTNESS_COLOURS["base"], linestyle="--", linewidth=1)}
    if not any(refs):
        del legend["paper LASER"]
    fig.legend(list(legend.values()), list(legend), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("Test accuracy of the selected configuration under the SVD draws")
    fig.tight_layout()
    _save(plt, fig, png_path, pdf_path)


# ---------------------------------------------------------------- composition and analysis


def composition_curve(compose: dict, steps: list[dict]) -> list[float]:
    """Validation accuracy of the kept composite after 0, 1, 2, … layers of the visiting order."""
    order = compose["plan"]["layers"]
    kept = steps[0]["val"]["acc"]
    after_layer = {}
    for step in steps[1:]:
        if step["accepted"]:
            kept = step["val"]["acc"]
        after_layer[step["layer"]] = kept
    curve = [steps[0]["val"]["acc"]]
    for layer in order:
        curve.append(after_layer.get(layer, curve[-1]))
    return curve


def plot_composition(compose: dict, steps: list[dict], png_path: str | os.PathLike, pdf_path: str | os.PathLike,
                     style: str | os.PathLike | None = None) -> None:
    """Validation accuracy of the greedy composite against the number of layers composed (in the
    visiting order), every evaluated step as a point (kept or reverted), the best single-layer
    LASER and the base model as horizontal lines."""
    plt = _pyplot(style)
    from matplotlib.ticker import MaxNLocator

    order = compose["plan"]["layers"]
    curve = composition_curve(compose, steps)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.22 * len(order) + 3.0), 3.6))
    ax.plot(range(len(curve)), curve, color="#d94801", marker="o", markersize=4, linewidth=1.5, label="composite (kept)")
    for accepted, style_kwargs, label in ((True, {"marker": "o", "facecolors": "none", "edgecolors": "#d94801"},
                                           "step kept"),
                                          (False, {"marker": "x", "c": "#737373"}, "step reverted")):
        chosen = [step for step in steps[1:] if step["accepted"] == accepted]
        if chosen:
            ax.scatter([order.index(step["layer"]) + 1 for step in chosen], [step["val"]["acc"] for step in chosen],
                       s=28, zorder=3, label=label, **style_kwargs)
    laser = compose["laser"]
    edit = laser["edit"]
    ax.axhline(laser["val"]["acc"], color="#2171b5", linestyle=":", linewidth=1.2,
               label=f"best single layer ({edit['tau']}, {edit['layer']}, {edit['rho']:g})")
    ax.axhline(compose["base"]["val"]["acc"], color="black", linestyle="--", linewidth=1, label="base")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"layers composed (visited {order[0]} → {order[-1]}; τ: {', '.join(compose['plan']['taus'])})")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    kept = len(compose["edits"])
    ax.set_title(f"{compose['model']} · {compose['dataset']}: greedy composition, "
                 f"{kept} {'matrix' if kept == 1 else 'matrices'} kept reduced")
    fig.tight_layout()
    _save(plt, fig, png_path, pdf_path)


ANALYSIS_PANELS = (("accuracy (%)", "acc"), ("generic answers (%)", "generic_share"),
                   ("mean pairwise cosine", "mean_cosine"))


def analysis_value(variant: dict, key: str) -> float:
    """A variant's accuracy on all items, generic-answer share or mean cosine similarity."""
    return variant["metrics"]["all"]["acc"] if key == "acc" else variant[key]


def plot_analysis(analysis: dict, png_path: str | os.PathLike, pdf_path: str | os.PathLike,
                  style: str | os.PathLike | None = None) -> None:
    """Against the share of the lowest singular components kept: accuracy of the bottom-only
    model, its share of generic answers and the mean pairwise cosine similarity of its final
    hidden states, on all items; base (dashed) and LASER (dotted) as horizontal lines."""
    plt = _pyplot(style)

    variants = {variant["variant"]: variant for variant in analysis["variants"] if variant["variant"] != "bottom"}
    bottoms = [variant for variant in analysis["variants"] if variant["variant"] == "bottom"]
    shares = [100 * variant["share"] for variant in bottoms]
    config = analysis["configuration"]
    fig, axes = _panels(plt, len(ANALYSIS_PANELS), 3.6, 3.2)
    for ax, (label, key) in zip(axes, ANALYSIS_PANELS):
        ax.plot(shares, [analysis_value(variant, key) for variant in bottoms], color="#6a51a3", marker="o",
                markersize=4, linewidth=1.5, label="bottom components only")
        ax.axhline(analysis_value(variants["laser"], key), color="#d94801", linestyle=":", linewidth=1.2,
                   label=f"LASER ({config['tau']}, {config['layer']}, {config['rho']:g})")
        ax.axhline(analysis_value(variants["base"], key), color="black", linestyle="--", linewidth=1, label="base")
        ax.set_xlabel("lowest singular components kept (% of rank)")
        ax.set_ylabel(label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.suptitle(f"{analysis['model']} · {analysis['dataset']}: {config['tau']} of layer {config['layer']} from "
                 f"its lowest components ({analysis['n_items']} items)")
    fig.tight_layout()
    _save(plt, fig, png_path, pdf_path)
