# Select stage: choose (τ, ℓ, ρ) on the validation part from the per-configuration files.


rule select:
    input:
        base=rules.evaluate_base.output.summary,
        runs=laser_run_files,
        dataset=rules.prepare_dataset.output.dataset,
    output:
        selection=paths.SELECTION,
    log:
        paths.log(paths.SELECTION),
    conda:
        "../envs/laserflow.yaml"
    params:
        code=code_fingerprint("laserflow.selection"),
    message:
        "select: {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/select.py"
