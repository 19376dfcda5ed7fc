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


rule evaluate_chosen:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        source_record=rules.prepare_dataset.output.source,
        selection=rules.select.output.selection,
        svd=chosen_svd_files,
        svd_records=records_of(chosen_svd_files),
    output:
        summary=paths.CHOSEN,
        records=paths.items(paths.CHOSEN),
    log:
        paths.log(paths.CHOSEN),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=evaluation_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=chosen_settings,
        code=code_fingerprint("laserflow.evaluate"),
    message:
        "select: {wildcards.model} on {wildcards.dataset}, the chosen configuration on every item"
    script:
        "../scripts/evaluate_chosen.py"
