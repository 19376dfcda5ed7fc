# Config validation and the glue from the sweep grid (laserflow.sweep) to file names (laserflow.paths).
import glob
import re
import sys
from pathlib import Path

from laserflow import config as lf_config
from laserflow import manifest as lf_manifest
from laserflow import paths
from laserflow import resources as lf_resources
from laserflow import sweep
from laserflow.fingerprint import code_fingerprint
from laserflow.edits import level_label
from laserflow.io import LaserflowError, check_replaceable
from laserflow.svd_cache import check_svd_caches
from laserflow.settings import EvaluationSettings
from laserflow.scheduling import single_recheck
from snakemake.scheduling.job_scheduler import JobScheduler

single_recheck(JobScheduler)

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
LAYER_KEYS = sweep.layer_keys(config)  # the configurations of one layer of the grid
SELECTED_CELLS = sweep.selected_cells(config)
ROBUSTNESS_CELLS = sweep.robustness_cells(config)


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=r"[a-z0-9_]+",
    intervention=r"laser|zero|prune",
    tau=r"[a-z_]+",
    layer=r"\d+",
    level=r"rate[0-9.]+|rho[0-9.]+|none",
    composite=r"[a-z]+-[a-z_]+-\d+-[a-z0-9.]+(\+[a-z]+-[a-z_]+-\d+-[a-z0-9.]+)+",


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


def model_path(model):
    """A model's directory: the configured local path, or where the models stage puts it."""
    return config["models"][model].get("path", paths.MODEL.format(model=model))


def model_directory(model):
    """A model's directory as an input. Its timestamp decides nothing: its content does, through
    the model's manifest (rules/models.smk), which every job reading the model also lists.
    """
    return ancient(model_path(model))


def model_input(wildcards):
    return model_directory(wildcards.model)


def hub_source(wildcards):
    """What a hub snapshot downloads: a new revision re-snapshots, other keys do not."""
    spec = config["models"][wildcards.model]
    return {"hub": spec["hub"], "revision": spec["revision"]}


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


def local_copy_files(wildcards):
    """The files of a local copy given as a directory (per-split files or a save_to_disk folder),
    so that editing one of them reruns the preparation; none for a file source."""
    local = config["datasets"][wildcards.dataset].get("local")
    if local is None or not Path(local).is_dir():
        return []
    return sorted(str(path) for path in Path(local).rglob("*") if path.is_file())


def answer_tokenizer(wildcards):
    """HotPotQA's answer filter reads this model's tokenizer (none for other datasets)."""
    model = config["datasets"][wildcards.dataset].get("answer_tokenizer")
    return [] if model is None else model_directory(model)


def answer_tokenizer_manifest(wildcards):
    """The manifest of the answer filter's model: its tokenizer's content decides reruns."""
    model = config["datasets"][wildcards.dataset].get("answer_tokenizer")
    return [] if model is None else paths.MANIFEST.format(model=model)


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


def other_runs():
    """Every configuration that is not a selection candidate (zero, prune, composites): evaluated
    for its own sake, so asked for by the default target."""
    return [
        paths.run_file(model, dataset, configuration)
        for model, dataset in CELLS
        for configuration in sweep.edits(config, model, dataset)
        if not sweep.is_candidate(configuration)
    ]


def laser_edits(wildcards):
    """The LASER edits a configuration target names (laserflow.paths.edits_of)."""
    return [edit for edit in paths.edits_of(wildcards) if edit.intervention == "laser"]


def svd_files(wildcards):
    """The cached exact SVDs a configuration's LASER edits truncate (none for other interventions).
    Their timestamps decide nothing; their records' content does (records_of)."""
    if config["svd"]["mode"] != "exact":
        return []
    return [
        ancient(paths.SVD.format(model=wildcards.model, tau=edit.tau, layer=edit.layer))
        for edit in laser_edits(wildcards)
    ]


def records_of(svd_input):
    """An input function giving the records (sha256) of the SVD cache files ``svd_input`` lists:
    they change exactly when the factors do, so a touched cache reruns nothing and a rebuilt one
    reruns the jobs that read it."""

    def records(wildcards):
        return [paths.svd_record(str(factors)) for factors in svd_input(wildcards)]

    return records


def cell_of(wildcards):
    """(model, dataset) of a layer group's ``{cell}`` wildcard."""
    return tuple(wildcards.cell.split("/"))


def group_input(pattern):
    """An input function giving ``pattern`` for a layer group's model and dataset."""

    def files(wildcards):
        model, dataset = cell_of(wildcards)
        return pattern.format(model=model, dataset=dataset)

    return files


def group_model(wildcards):
    return model_directory(cell_of(wildcards)[0])


def svd_inputs(model, matrices):
    """The cached exact SVD files of a model's (τ, ℓ) ``matrices`` as inputs: their timestamps
    decide nothing, their records' content does (records_of)."""
    return [
        ancient(paths.SVD.format(model=model, tau=tau, layer=layer))
        for tau, layer in matrices
    ]


def laser_svd_files(model, edits):
    """The cached exact SVDs that LASER ``edits`` truncate (none in randomized mode)."""
    if config["svd"]["mode"] != "exact":
        return []
    return [ancient(path) for path in paths.svd_files(model, edits)]


def group_svd_files(wildcards):
    model, dataset = cell_of(wildcards)
    layer = int(wildcards.layer)
    edits = sweep.edits(config, model, dataset)
    return laser_svd_files(model, [edit for edit in edits if edit.layer == layer])


def chosen_svd_files(wildcards):
    """Every SVD a cell's search may choose (the chosen configuration's job reads one of them)."""
    return laser_svd_files(
        wildcards.model, sweep.edits(config, wildcards.model, wildcards.dataset)
    )


def evaluation_settings(wildcards):
    """Everything an evaluation job needs besides its files (laserflow.settings), as plain
    values: changing any of them reruns exactly the jobs it concerns. The base model scores
    every item; a configuration scores its cell's part."""
    configuration = bool(paths.edits_of(wildcards))
    part = (
        sweep.part(config, wildcards.model, wildcards.dataset)
        if configuration
        else "all"
    )
    return EvaluationSettings.from_config(
        config, wildcards.model, wildcards.dataset, bool(laser_edits(wildcards)), part
    ).as_dict()


def layer_key_values():
    """A layer group's configurations as target wildcards (the layer comes from the job)."""
    return [
        {"intervention": intervention, "tau": tau, "level": level_label(level)}
        for intervention, tau, level in LAYER_KEYS
    ]


def group_settings(wildcards):
    model, dataset = cell_of(wildcards)
    return EvaluationSettings.from_config(
        config, model, dataset, True, sweep.part(config, model, dataset)
    ).as_dict()


def chosen_settings(wildcards):
    return EvaluationSettings.from_config(
        config, wildcards.model, wildcards.dataset, True
    ).as_dict()


def evaluation_mem_mb(wildcards):
    model = cell_of(wildcards)[0] if hasattr(wildcards, "cell") else wildcards.model
    return lf_resources.evaluation_mem_mb(config, model)


def svd_mem_mb(wildcards, input):
    """Re-evaluated once the model directory exists."""
    return lf_resources.svd_mem_mb(config, wildcards.model, input.model)


def local_gpus(wildcards):
    # The executor is known when jobs are scheduled, not yet when this file is read.
    return lf_resources.local_gpus(config, bool(workflow.non_local_exec))


def gpu_gres(wildcards):
    return lf_resources.gpu_gres(config, bool(workflow.non_local_exec))


# ---------------------------------------------------------------- cells and report targets


def cell_files(pattern, cells=CELLS, part=None):
    """``pattern`` formatted for every (model, dataset) cell that runs (or of ``cells``; only the
    cells whose configurations score ``part``, if given)."""
    return [
        paths.cell_file(pattern, model, dataset)
        for model, dataset in cells
        if part in (None, sweep.part(config, model, dataset))
    ]


def selection_files():
    """The selection of every cell with a LASER configuration to select."""
    return cell_files(paths.SELECTION, SELECTED_CELLS)


def chosen_files():
    """The chosen configuration scored on every item, of every selected cell that searched on
    its validation part only."""
    return cell_files(paths.CHOSEN, SELECTED_CELLS, "validation")


def grouped_cells():
    """The cells searched by layer groups, as ``model/dataset`` values of ``{cell}``."""
    return [
        f"{model}/{dataset}"
        for model, dataset in CELLS
        if sweep.grouped(config, model, dataset)
    ]


def report_tables():
    """Table 1 and the hyperparameters (CSV, Markdown, LaTeX) and the number macros (when a cell
    has a selection), the provenance."""
    tables = [
        paths.TABLE.format(name=name, ext=ext)
        for name in ("table1", "hyperparameters")
        for ext in ("csv", "md", "tex")
    ] + [paths.TABLE.format(name="numbers", ext="tex")]
    return (tables if SELECTED_CELLS else []) + [
        paths.TABLE.format(name="provenance", ext="csv")
    ]


def figures():
    """Every figure: the sweep figure and heatmap of each cell whose search has at least two
    LASER configurations (one point draws no curve), and Table 1's bars."""
    searched = [
        (model, dataset)
        for model, dataset in SELECTED_CELLS
        if len(run_files(model, dataset, "laser")) > 1
    ]
    bars = [paths.FIGURE.format(name="table1_bars", ext=ext) for ext in ("png", "pdf")]
    return [
        paths.CELL_FIGURE.format(model=model, dataset=dataset, name=name, ext=ext)
        for model, dataset in searched
        for name in ("sweep", "val_heatmap")
        for ext in ("png", "pdf")
    ] + (bars if SELECTED_CELLS else [])


# ---------------------------------------------------------------- robustness


def robustness_runs(wildcards):
    """The cell's LASER runs in sweep order, which rank the candidates beyond the selected one."""
    return laser_run_files(wildcards) if config["robustness"]["top_k"] > 1 else []


def cell_svd_files(wildcards):
    """The cached exact SVD of every matrix the cell's LASER configurations truncate: which ones
    a robustness job redraws is known only from the runs' results."""
    return [
        ancient(path)
        for path in paths.svd_files(
            wildcards.model,
            [
                edit
                for edit in sweep.edits(config, wildcards.model, wildcards.dataset)
                if sweep.is_candidate(edit)
            ],
        )
    ]


def robustness_settings(wildcards):
    """The evaluation settings a robustness job scores with (its SVDs are its own: exact and drawn)."""
    return EvaluationSettings.from_config(
        config, wildcards.model, wildcards.dataset, False
    ).as_dict()


def robustness_outputs():
    """The robustness table and figure, when the stage runs."""
    if not ROBUSTNESS_CELLS:
        return []
    return [
        paths.TABLE.format(name="robustness", ext=ext) for ext in ("csv", "md", "tex")
    ] + [paths.FIGURE.format(name="robustness", ext=ext) for ext in ("png", "pdf")]


# ---------------------------------------------------------------- composition and analysis


COMPOSE_CELLS = sweep.block_cells(config, "compose")
ANALYSIS_CELLS = sweep.block_cells(config, "analysis")


def compose_svd_files(wildcards):
    """The cached exact SVD of every matrix the composition may edit."""
    plan = sweep.ComposePlan.from_config(config, wildcards.model)
    return svd_inputs(wildcards.model, plan.matrices)


def cell_chosen(wildcards):
    """The cell's chosen configuration scored on every item, when its search scored the
    validation part only (its test numbers are there)."""
    if sweep.part(config, wildcards.model, wildcards.dataset) != "validation":
        return []
    return paths.cell_file(paths.CHOSEN, wildcards.model, wildcards.dataset)


def compose_plan(wildcards):
    return sweep.ComposePlan.from_config(config, wildcards.model).as_dict()


def compose_mem_mb(wildcards, input):
    """Re-evaluated once the SVD files exist."""
    return lf_resources.compose_mem_mb(config, wildcards.model, input.svd)


def compose_files(pattern):
    """``pattern`` formatted for every composed cell."""
    return [
        paths.cell_file(pattern, model, dataset) for model, dataset in COMPOSE_CELLS
    ]


def compose_targets():
    """The composition table and each composed cell's figure (none when compose is off)."""
    if not COMPOSE_CELLS:
        return []
    return [
        paths.TABLE.format(name="composition", ext=ext) for ext in ("csv", "md", "tex")
    ] + [
        paths.CELL_FIGURE.format(
            model=model, dataset=dataset, name="composition", ext=ext
        )
        for model, dataset in COMPOSE_CELLS
        for ext in ("png", "pdf")
    ]


def analysis_svd_files(wildcards):
    """The cached exact SVD of the analysed matrix: the configured one, or every matrix the cell's
    sweep truncates (the selected one is among them; which one is known only after selection).
    """
    edit = sweep.analysis_edit(config)
    matrices = (
        [(edit.tau, edit.layer)]
        if edit
        else sweep.laser_matrices(config, wildcards.model, wildcards.dataset)
    )
    return svd_inputs(wildcards.model, matrices)


def analysis_selection(wildcards):
    """The cell's selection, when the analysed configuration is the selected one."""
    if sweep.analysis_edit(config):
        return []
    return paths.cell_file(paths.SELECTION, wildcards.model, wildcards.dataset)


def analysis_params(wildcards):
    """The analysis block's values the job uses (the table's row count is not one)."""
    spec = config["analysis"]
    return {key: spec[key] for key in ("configuration", "shares", "generic_top")}


def analysis_mem_mb(wildcards, input):
    """Re-evaluated once the model, dataset and SVD files exist."""
    return lf_resources.analysis_mem_mb(
        config, wildcards.model, input.model, input.dataset, input.svd
    )


def analysis_targets():
    """Each analysed cell's figure and table of corrected items (none when analysis is off)."""
    return [
        paths.CELL_FIGURE.format(model=model, dataset=dataset, name="analysis", ext=ext)
        for model, dataset in ANALYSIS_CELLS
        for ext in ("png", "pdf")
    ] + [
        paths.CELL_TABLE.format(
            model=model, dataset=dataset, name="corrections", ext=ext
        )
        for model, dataset in ANALYSIS_CELLS
        for ext in ("csv", "md", "tex")
    ]


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


def export_chosen(wildcards):
    """The selected configuration scored on every item, when the export takes it from a
    validation-only search (its test numbers go on the model card)."""
    if sweep.export_edits(config, wildcards.model, wildcards.dataset) is not None:
        return []
    return cell_chosen(wildcards)


def export_svd_files(wildcards):
    """The cached exact SVDs of the exported edits; for the selected configuration, those of every
    LASER configuration of the cell (the selection is only known once it has run)."""
    if config["svd"]["mode"] != "exact":
        return []
    edits = sweep.export_edits(config, wildcards.model, wildcards.dataset)
    matrices = (
        sweep.laser_matrices(config, wildcards.model, wildcards.dataset)
        if edits is None
        else dict.fromkeys((edit.tau, edit.layer) for edit in edits)
    )
    return svd_inputs(wildcards.model, matrices)


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
