# Analysis stage: what the higher-order singular components store (laserflow.analysis), one job
# per cell for the configured or selected (τ, ℓ, ρ); its figure and its table of corrected items.


rule analysis:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        source_record=rules.prepare_dataset.output.source,
        selection=analysis_selection,
        svd=analysis_svd_files,
        svd_records=records_of(analysis_svd_files),
    output:
        summary=paths.ANALYSIS,
        records=paths.items(paths.ANALYSIS),
    log:
        paths.log(paths.ANALYSIS),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=analysis_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=evaluation_settings,
        analysis=analysis_params,
        code=code_fingerprint("laserflow.analysis"),
    message:
        "analysis: {wildcards.model} on {wildcards.dataset}, the lowest singular components alone"
    script:
        "../scripts/analysis.py"


rule analysis_figure:
    input:
        analysis=rules.analysis.output.summary,
        script=report_script("analysis_figure"),
        style=STYLE,
    output:
        png=report(
            paths.cell_pattern(paths.CELL_FIGURE, "analysis", "png"),
            caption="../report/analysis_figure.rst",
            category="Higher-order components",
            subcategory="{model} · {dataset}",
        ),
        pdf=paths.cell_pattern(paths.CELL_FIGURE, "analysis", "pdf"),
    log:
        "logs/report/analysis_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: the higher-order components figure of {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/analysis_figure.py"


rule corrections_table:
    input:
        analysis=rules.analysis.output.summary,
        predictions=rules.analysis.output.records,
        script=report_script("corrections_table"),
    output:
        csv=report(
            paths.cell_pattern(paths.CELL_TABLE, "corrections", "csv"),
            caption="../report/corrections.rst",
            category="Higher-order components",
            subcategory="{model} · {dataset}",
        ),
        md=paths.cell_pattern(paths.CELL_TABLE, "corrections", "md"),
        tex=paths.cell_pattern(paths.CELL_TABLE, "corrections", "tex"),
    log:
        "logs/report/corrections_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        examples=config["analysis"]["examples"],
        code=TABLE_CODE,
    message:
        "report: the items LASER corrects, {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/corrections_table.py"
