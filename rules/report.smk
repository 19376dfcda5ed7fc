# Report stage: one rule per artifact; each rule's script (and a figure's style file) is its input.

TABLE_CODE = code_fingerprint(
    "laserflow.report", "laserflow.records", "laserflow.paper"
)
FIGURE_CODE = code_fingerprint("laserflow.figures", "laserflow.records")


rule table1:
    input:
        selections=selection_files(),
        chosen=chosen_files(),
        paper=PAPER_TABLE,
        script=report_script("table1"),
    output:
        csv=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Table 1",
        ),
        md="results/tables/table1.md",
        tex=report(
            "results/tables/table1.tex",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Table 1",
        ),
    log:
        "logs/report/table1.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
        tolerance=config["report"]["tolerance"],
    message:
        "report: Table 1"
    script:
        "../scripts/table1.py"


rule hyperparameters:
    input:
        selections=selection_files(),
        chosen=chosen_files(),
        script=report_script("hyperparameters"),
    output:
        csv=report(
            "results/tables/hyperparameters.csv",
            caption="../report/hyperparameters.rst",
            category="Tables",
            subcategory="Selected hyperparameters",
        ),
        md="results/tables/hyperparameters.md",
        tex=report(
            "results/tables/hyperparameters.tex",
            caption="../report/hyperparameters.rst",
            category="Tables",
            subcategory="Selected hyperparameters",
        ),
    log:
        "logs/report/hyperparameters.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
    message:
        "report: the selected hyperparameters"
    script:
        "../scripts/hyperparameters.py"


rule numbers:
    input:
        selections=selection_files(),
        chosen=chosen_files(),
        paper=PAPER_TABLE,
        script=report_script("numbers"),
    output:
        tex=report(
            "results/tables/numbers.tex",
            caption="../report/numbers.rst",
            category="Tables",
            subcategory="Numbers for the text",
        ),
    log:
        "logs/report/numbers.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
        tolerance=config["report"]["tolerance"],
    message:
        "report: the number macros"
    script:
        "../scripts/numbers.py"


rule provenance:
    input:
        bases=cell_files(paths.BASE),
        script=report_script("provenance"),
    output:
        csv=report(
            "results/tables/provenance.csv",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "logs/report/provenance.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=TABLE_CODE,
    message:
        "report: the provenance table"
    script:
        "../scripts/provenance.py"


rule sweep_figure:
    input:
        base=rules.evaluate_base.output.summary,
        runs=laser_run_files,
        script=report_script("sweep_figure"),
        style=STYLE,
    output:
        png=report(
            "results/figures/{model}/{dataset}/sweep.png",
            caption="../report/sweep.rst",
            category="Figures",
            subcategory="{model} · {dataset}",
        ),
        pdf="results/figures/{model}/{dataset}/sweep.pdf",
    log:
        "logs/report/sweep_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: the sweep figure of {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/sweep_figure.py"


rule heatmap_figure:
    input:
        base=rules.evaluate_base.output.summary,
        selection=rules.select.output.selection,
        runs=laser_run_files,
        script=report_script("heatmap_figure"),
        style=STYLE,
    output:
        png=report(
            "results/figures/{model}/{dataset}/val_heatmap.png",
            caption="../report/heatmap.rst",
            category="Figures",
            subcategory="{model} · {dataset}",
        ),
        pdf="results/figures/{model}/{dataset}/val_heatmap.pdf",
    log:
        "logs/report/heatmap_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: the validation heatmaps of {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/heatmap_figure.py"


rule bars_figure:
    input:
        table=rules.table1.output.csv,
        script=report_script("bars_figure"),
        style=STYLE,
    output:
        png=report(
            "results/figures/table1_bars.png",
            caption="../report/bars.rst",
            category="Figures",
            subcategory="Table 1",
        ),
        pdf="results/figures/table1_bars.pdf",
    log:
        "logs/report/bars.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        code=FIGURE_CODE,
    message:
        "report: Table 1's bar chart"
    script:
        "../scripts/bars_figure.py"
