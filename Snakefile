# laserflow: LASER (layer-selective rank reduction) reproduction workflow.
# data -> models -> sweep -> select -> report (and robustness, when on); all logic lives in src/laserflow.


# config.yaml is the default (the offline demo). A --configfile replaces it; several --configfile
# files are layered (configs/paper-selected.yaml on configs/paper.yaml).
if not config:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/sweep.smk"
include: "rules/select.smk"
include: "rules/report.smk"
include: "rules/robustness.smk"
include: "rules/compose.smk"
include: "rules/analysis.smk"
include: "rules/export.smk"


# On a cluster (profiles/slurm) these run on the head node: downloads need its internet access,
# and the rest are seconds of work that would wait longer in the queue than they run.
localrules:
    download_dataset,
    snapshot_model,
    fetch_hub_dataset,
    prepare_dataset,
    select,
    table1,
    hyperparameters,
    numbers,
    provenance,
    sweep_figure,
    heatmap_figure,
    bars_figure,
    robustness_table,
    robustness_figure,
    composition_figure,
    composition_table,
    analysis_figure,
    corrections_table,


rule all:
    default_target: True
    input:
        tables=report_tables(),
        figures=figures(),
        other_runs=other_runs(),
        robustness=robustness_outputs(),
        compose=compose_targets(),
        analysis=analysis_targets(),
    message:
        "every table and figure is up to date"
