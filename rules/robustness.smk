# Robustness stage: the selected configuration of a cell (and the next validation candidates)
# under the exact SVD and K seeded draws of the original's randomized SVD, one job per cell; its
# table and figure. Off unless robustness.enabled.


rule robustness:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        source_record=rules.prepare_dataset.output.source,
        selection=rules.select.output.selection,
        runs=robustness_runs,
        svd=cell_svd_files,
        svd_records=records_of(cell_svd_files),
    output:
        summary=paths.ROBUSTNESS,
        records=paths.items(paths.ROBUSTNESS),
    log:
        paths.log(paths.ROBUSTNESS),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=evaluation_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=robustness_settings,
        draws=config["robustness"]["draws"],
        top_k=config["robustness"]["top_k"],
        code=code_fingerprint("laserflow.robustness"),
    message:
        "robustness: {wildcards.model} on {wildcards.dataset}, the exact SVD and {params.draws} randomized draws"
    script:
        "../scripts/robustness.py"


rule robustness_table:
    input:
        robustness=cell_files(paths.ROBUSTNESS, ROBUSTNESS_CELLS),
        paper=PAPER_TABLE,
        script=report_script("robustness_table"),
    output:
        csv=report(
            "results/tables/robustness.csv",
            caption="../report/robustness_table.rst",
            category="Robustness",
        ),
        md="results/tables/robustness.md",
        tex=report(
            "results/tables/robustness.tex",
            caption="../report/robustness_table.rst",
            category="Robustness",
        ),
    log:
        "logs/report/robustness_table.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
    message:
        "report: the robustness table"
    script:
        "../scripts/robustness_table.py"


rule robustness_figure:
    input:
        robustness=cell_files(paths.ROBUSTNESS, ROBUSTNESS_CELLS),
        paper=PAPER_TABLE,
        script=report_script("robustness_figure"),
        style=STYLE,
    output:
        png=report(
            "results/figures/robustness.png",
            caption="../report/robustness_figure.rst",
            category="Robustness",
        ),
        pdf="results/figures/robustness.pdf",
    log:
        "logs/report/robustness_figure.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: the robustness figure"
    script:
        "../scripts/robustness_figure.py"
