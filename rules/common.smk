# Config validation and the glue from the sweep grid (laserflow.sweep) to file names (laserflow.paths).
import re
import sys
from pathlib import Path

from laserflow import config as lf_config
from laserflow import paths
from laserflow import resources as lf_resources
from laserflow import sweep
from laserflow.fingerprint import code_fingerprint
from laserflow.io import LaserflowError, check_replaceable
from laserflow.settings import EvaluationSettings

try:
    lf_config.validate(
        config, source=" + ".join(map(str, workflow.configfiles)) or "config"
    )
except LaserflowError as err:
    sys.exit(f"laserflow: error: {err}")

REPO = Path(workflow.basedir)
PAPER_TABLE = str(REPO / "data" / "paper" / "table1.csv")
STYLE = str(REPO / "styles" / "laserflow.mplstyle")
CELLS = sweep.cells(config)


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=r"[a-z0-9_]+",
    intervention=r"laser|zero|prune",
    tau=r"[a-z_]+",
    layer=r"\d+",
    level=r"rate[0-9.]+|rho[0-9.]+|none",


def name_pattern(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def sources(section, key):
    """Names in config[section] whose spec has ``key`` (e.g. the hub datasets)."""
    return [name for name, spec in config[section].items() if key in spec]


def report_script(name):
    """A report rule's script, as an input, so editing it re-renders that artifact only."""
    return str(REPO / "scripts" / f"{name}.py")


# ---------------------------------------------------------------- models and datasets


def model_directory(model):
    """A model's directory: the configured local path, or where the models stage puts it."""
    spec = config["models"][model]
    if "tiny" in spec:
        return paths.MODEL.format(model=model)
    # A pinned hub snapshot or a local copy: a new timestamp alone must not rerun the sweep.
    return ancient(spec.get("path", paths.MODEL.format(model=model)))


def model_input(wildcards):
    return model_directory(wildcards.model)


def raw_source(dataset):
    """A dataset's raw source file: the configured local file, or where the data stage fetches it."""
    spec = config["datasets"][dataset]
    if "local" in spec:
        return spec["local"]
    # A checksummed download or a pinned hub revision: a new timestamp alone must not rerun
    # everything downstream.
    pattern = paths.DOWNLOAD if "url" in spec else paths.HUB_DOWNLOAD
    return ancient(pattern.format(dataset=dataset))


def raw_input(wildcards):
    return raw_source(wildcards.dataset)


def answer_tokenizer(wildcards):
    """HotPotQA's answer filter reads this model's tokenizer (none for other datasets)."""
    model = config["datasets"][wildcards.dataset].get("answer_tokenizer")
    return [] if model is None else model_directory(model)


def tiny_model_corpus(wildcards):
    """Tiny tokenizers are trained on every configured dataset's raw text, so that the words the
    protocol needs as one token (answers, label words) are one token."""
    return [raw_source(dataset) for dataset in config["datasets"]]


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def model_spec(wildcards):
    return config["models"][wildcards.model]


# ---------------------------------------------------------------- the sweep


def run_files(model, dataset, intervention=None):
    """One cell's configuration summaries, in the original's sweep order (optionally only one
    intervention's)."""
    return [
        paths.run_file(model, dataset, edit)
        for edit in sweep.edits(config, model, dataset)
        if intervention in (None, edit.intervention)
    ]


def laser_run_files(wildcards):
    return run_files(wildcards.model, wildcards.dataset, "laser")


def svd_files(wildcards):
    """The cached exact SVD a LASER configuration truncates (none for other interventions)."""
    if wildcards.intervention != "laser" or config["svd"]["mode"] != "exact":
        return []
    return [paths.SVD.format(**wildcards)]


def evaluation_settings(wildcards):
    """Everything an evaluation job needs besides its files (laserflow.settings), as plain
    values: changing any of them reruns exactly the jobs it concerns."""
    uses_svd = getattr(wildcards, "intervention", None) == "laser"
    return EvaluationSettings.from_config(
        config, wildcards.model, wildcards.dataset, uses_svd
    ).as_dict()


def evaluation_mem_mb(wildcards):
    return lf_resources.evaluation_mem_mb(config, wildcards.model)


def svd_mem_mb(wildcards, input):
    """Re-evaluated once the model directory exists."""
    return lf_resources.svd_mem_mb(config, wildcards.model, input.model)


def local_gpus(wildcards):
    # The executor is known when jobs are scheduled, not yet when this file is read.
    return lf_resources.local_gpus(config, bool(workflow.non_local_exec))


def gpu_gres(wildcards):
    return lf_resources.gpu_gres(config, bool(workflow.non_local_exec))


# ---------------------------------------------------------------- cells and report targets


def cell_files(pattern):
    """``pattern`` formatted for every (model, dataset) cell that runs."""
    return [paths.cell_file(pattern, model, dataset) for model, dataset in CELLS]


def report_tables():
    """Table 1 and the hyperparameters (CSV, Markdown, LaTeX), the number macros, the provenance."""
    return [
        paths.TABLE.format(name=name, ext=ext)
        for name in ("table1", "hyperparameters")
        for ext in ("csv", "md", "tex")
    ] + [
        paths.TABLE.format(name="numbers", ext="tex"),
        paths.TABLE.format(name="provenance", ext="csv"),
    ]


def figures():
    """Every figure: the sweep figure and heatmap of each cell whose search has at least two
    configurations (one point draws no curve), and Table 1's bars."""
    searched = [
        (model, dataset)
        for model, dataset in CELLS
        if len(sweep.edits(config, model, dataset)) > 1
    ]
    return [
        paths.CELL_FIGURE.format(model=model, dataset=dataset, name=name, ext=ext)
        for model, dataset in searched
        for name in ("sweep", "val_heatmap")
        for ext in ("png", "pdf")
    ] + [paths.FIGURE.format(name="table1_bars", ext=ext) for ext in ("png", "pdf")]


# ---------------------------------------------------------------- export (rules/export.smk)
def export_choice(wildcards):
    """What chose the exported edits: the cell's selection, or the evaluated configuration of a
    one-edit ``export.edits`` list (none for a longer list, which laserflow does not evaluate).

    Snakemake deletes a directory output before its job runs, so a target that exists with other
    contents stops the run here, before anything is deleted."""
    try:
        check_replaceable(paths.EXPORT.format(**wildcards), paths.EXPORT_RECORD)
    except LaserflowError as err:
        sys.exit(f"laserflow: error: {err}")
    edits = sweep.export_edits(config, wildcards.model, wildcards.dataset)
    if edits is None:
        return paths.SELECTION.format(**wildcards)
    if len(edits) == 1:
        return paths.run_file(wildcards.model, wildcards.dataset, edits[0])
    return []


def export_svd_files(wildcards):
    """The cached exact SVDs of the exported edits; for the selected configuration, those of every
    LASER configuration of the cell (the selection is only known once it has run)."""
    if config["svd"]["mode"] != "exact":
        return []
    edits = sweep.export_edits(config, wildcards.model, wildcards.dataset)
    if edits is None:
        edits = sweep.edits(config, wildcards.model, wildcards.dataset)
    return sorted(
        {
            paths.SVD.format(model=wildcards.model, tau=edit.tau, layer=edit.layer)
            for edit in edits
            if edit.intervention == "laser"
        }
    )


def export_options(wildcards):
    """The formats, the items verified and the cell's ``export.edits`` list (None: the selection)."""
    settings = config["export"]
    return {
        "formats": settings["formats"],
        "verify_items": settings["verify_items"],
        "edits": settings.get("edits", {})
        .get(wildcards.model, {})
        .get(wildcards.dataset),
    }


def export_settings(wildcards):
    """The evaluation settings the exported model was evaluated with (dtype, activation, SVD)."""
    return EvaluationSettings.from_config(
        config, wildcards.model, wildcards.dataset, True
    ).as_dict()


def export_mem_mb(wildcards):
    return lf_resources.export_mem_mb(config, wildcards.model)
