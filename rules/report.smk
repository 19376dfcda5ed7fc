# Report stage: one rule per artifact; each rule's script (and a figure's style file) is its input.


rule table1:
    input:
        selections=all_selections(),
        paper=PAPER_TABLE,
        script=report_script("table1"),
        code=package_sources("paper.py", "records.py", "report.py"),
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
        tolerance=config["report"]["tolerance"],
    script:
        "../scripts/table1.py"


rule hyperparameters:
    input:
        selections=all_selections(),
        script=report_script("hyperparameters"),
        code=package_sources("paper.py", "records.py", "report.py"),
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
    script:
        "../scripts/hyperparameters.py"


rule numbers:
    input:
        selections=all_selections(),
        paper=PAPER_TABLE,
        script=report_script("numbers"),
        code=package_sources("paper.py", "records.py", "report.py"),
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
        tolerance=config["report"]["tolerance"],
    script:
        "../scripts/numbers.py"


rule provenance:
    input:
        bases=all_bases(),
        script=report_script("provenance"),
        code=package_sources("paper.py", "records.py", "report.py"),
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
    script:
        "../scripts/provenance.py"


rule sweep_figure:
    input:
        base=base_file,
        runs=laser_run_files,
        script=report_script("sweep_figure"),
        style=STYLE,
        code=FIGURE_SOURCES,
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
    script:
        "../scripts/sweep_figure.py"


rule heatmap_figure:
    input:
        base=base_file,
        selection=selection_file,
        runs=laser_run_files,
        script=report_script("heatmap_figure"),
        style=STYLE,
        code=FIGURE_SOURCES,
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
    script:
        "../scripts/heatmap_figure.py"


rule bars_figure:
    input:
        table="results/tables/table1.csv",
        script=report_script("bars_figure"),
        style=STYLE,
        code=FIGURE_SOURCES,
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
    script:
        "../scripts/bars_figure.py"
