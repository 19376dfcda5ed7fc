# Compose stage: greedy composition of LASER edits across layers on the validation part
# (laserflow.compose), one sequential job per cell; its figure, and a table of every cell.


rule compose:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        source_record=rules.prepare_dataset.output.source,
        chosen=cell_chosen,
        selection=rules.select.output.selection,
        svd=compose_svd_files,
        svd_records=records_of(compose_svd_files),
    output:
        summary=paths.COMPOSE,
        steps=paths.COMPOSE_STEPS,
        records=paths.items(paths.COMPOSE),
    log:
        paths.log(paths.COMPOSE),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=compose_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=evaluation_settings,
        plan=compose_plan,
        code=code_fingerprint("laserflow.compose"),
    message:
        "compose: {wildcards.model} on {wildcards.dataset}, greedy over layers on the validation part"
    script:
        "../scripts/compose.py"


rule composition_figure:
    input:
        compose=rules.compose.output.summary,
        steps=rules.compose.output.steps,
        script=report_script("composition_figure"),
        style=STYLE,
    output:
        png=report(
            paths.cell_pattern(paths.CELL_FIGURE, "composition", "png"),
            caption="../report/composition_figure.rst",
            category="Composition",
            subcategory="{model} · {dataset}",
        ),
        pdf=paths.cell_pattern(paths.CELL_FIGURE, "composition", "pdf"),
    log:
        "logs/report/composition_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: the composition figure of {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/composition_figure.py"


rule composition_table:
    input:
        composes=compose_files(paths.COMPOSE),
        script=report_script("composition_table"),
    output:
        csv=report(
            paths.TABLE.format(name="composition", ext="csv"),
            caption="../report/composition.rst",
            category="Composition",
            subcategory="Table",
        ),
        md=paths.TABLE.format(name="composition", ext="md"),
        tex=report(
            paths.TABLE.format(name="composition", ext="tex"),
            caption="../report/composition.rst",
            category="Composition",
            subcategory="Table",
        ),
    log:
        "logs/report/composition.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
    message:
        "report: the composition table"
    script:
        "../scripts/composition_table.py"
