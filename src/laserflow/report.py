"""Tables and figures rendered from the collected selection and run files."""

from __future__ import annotations

import os

from .io import LaserflowError, atomic_path, write_text

TABLE1_COLUMNS = [
    "dataset", "model", "n_test",
    "base_test_acc", "base_test_logloss", "laser_test_acc", "laser_test_logloss",
    "tau", "layer", "rho", "rate", "laser_val_acc", "laser_val_logloss",
]


def table1_rows(selections: list[dict]) -> list[dict]:
    rows = []
    for sel in sorted(selections, key=lambda s: (s["dataset"], s["model"])):
        chosen = sel["chosen"]
        rows.append({
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
        })
    return rows


def _cell(acc: float, loss: float) -> str:
    return f"{acc:.1f} ({loss:.2f})"


def write_table1(selections: list[dict], csv_path: str | os.PathLike, md_path: str | os.PathLike) -> list[dict]:
    """Table 1: base and LASER test accuracy % (log-loss) and the chosen (τ, ℓ, ρ) per cell."""
    import pandas as pd

    rows = table1_rows(selections)
    if not rows:
        raise LaserflowError("no selection results to tabulate")
    frame = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    lines = [
        "| dataset | model | base acc (loss) | LASER acc (loss) | (τ, ℓ, ρ) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['model']} | {_cell(row['base_test_acc'], row['base_test_logloss'])} | "
            f"{_cell(row['laser_test_acc'], row['laser_test_logloss'])} | "
            f"({row['tau']}, {row['layer']}, {row['rho']:g}) |"
        )
    notes = (
        "\nTest part (last 80%) accuracy in % with mean per-token log-loss in parentheses; "
        "(τ, ℓ, ρ) chosen on the validation part (first 20%).\n"
    )
    write_text(md_path, "\n".join(lines) + "\n" + notes)
    return rows


def sweep_frame(base: dict, runs: list[dict]):
    """Long table of test log-loss per (τ, layer, ρ) for the LASER runs of one (model, dataset)."""
    import pandas as pd

    records = []
    for run in runs:
        if len(run["edits"]) != 1 or run["edits"][0]["intervention"] != "laser":
            continue
        edit = run["edits"][0]
        records.append({"tau": edit["tau"], "layer": edit["layer"], "rho": edit["rho"],
                        "test_logloss": run["metrics"]["test"]["logloss"],
                        "test_acc": run["metrics"]["test"]["acc"]})
    if not records:
        raise LaserflowError(f"no LASER runs for {base['model']}/{base['dataset']} to plot")
    return pd.DataFrame.from_records(records).sort_values(["tau", "rho", "layer"])


def plot_sweep(base: dict, runs: list[dict], png_path: str | os.PathLike, pdf_path: str | os.PathLike,
               style: str | os.PathLike | None = None) -> None:
    """Test log-loss against layer, one line per ρ, one panel per τ; base loss dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    frame = sweep_frame(base, runs)
    if style:
        plt.style.use(str(style))
    taus = list(dict.fromkeys(frame["tau"]))
    rhos = sorted(frame["rho"].unique(), reverse=True)
    palette = dict(zip(rhos, sns.color_palette("magma_r", n_colors=len(rhos) + 1)[1:]))
    fig, axes = plt.subplots(1, len(taus), figsize=(4.2 * len(taus), 3.4), sharey=True, squeeze=False)
    base_loss = base["metrics"]["test"]["logloss"]
    for ax, tau in zip(axes[0], taus):
        sns.lineplot(data=frame[frame["tau"] == tau], x="layer", y="test_logloss", hue="rho",
                     hue_order=rhos, palette=palette, marker="o", ax=ax, legend=ax is axes[0][-1])
        ax.axhline(base_loss, color="black", linestyle="--", linewidth=1, label="base")
        ax.set_title(tau)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer")
        ax.set_ylabel("test log-loss")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if axes[0][-1].get_legend():
        axes[0][-1].get_legend().remove()
    fig.legend(handles, [f"ρ={label}" if label != "base" else label for label in labels],
               loc="center right", frameon=False, title="kept rank")
    fig.suptitle(f"{base['model']} · {base['dataset']}: test log-loss under LASER")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    for path in (png_path, pdf_path):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], dpi=150)
    plt.close(fig)
