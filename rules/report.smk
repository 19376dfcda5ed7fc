# Report stage: one rule per artifact; each rule's script and style file are its inputs.


rule table1:
    input:
        selections=all_selections(),
        code=package_sources("report.py"),
    output:
        csv=TABLE1_FILES[0],
        md=TABLE1_FILES[1],
    log:
        "logs/report/table1.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/table1.py"


rule sweep_figure:
    input:
        base=base_file,
        runs=laser_run_files,
        style=str(REPO / "styles" / "laserflow.mplstyle"),
        code=package_sources("report.py"),
    output:
        png="results/figures/{model}/{dataset}/sweep.png",
        pdf="results/figures/{model}/{dataset}/sweep.pdf",
    log:
        "logs/report/sweep_{model}_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/sweep_figure.py"
