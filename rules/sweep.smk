# Sweep stage: one target per (model, dataset, intervention, τ, ℓ, level), plus the base model.


rule svd:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
    output:
        factors=paths.SVD,
        record=paths.svd_record(paths.SVD),
    log:
        paths.log(paths.SVD),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=svd_mem_mb,
    params:
        code=code_fingerprint("laserflow.svd"),
    message:
        "sweep: SVD of {wildcards.model} {wildcards.tau}, layer {wildcards.layer}"
    script:
        "../scripts/svd.py"


rule evaluate_base:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
    output:
        summary=paths.BASE,
        records=paths.items(paths.BASE),
    log:
        paths.log(paths.BASE),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=evaluation_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=evaluation_settings,
        code=code_fingerprint("laserflow.evaluate"),
    message:
        "sweep: {wildcards.model} on {wildcards.dataset}, base model"
    script:
        "../scripts/evaluate.py"


rule evaluate_configuration:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        svd=svd_files,
        svd_records=svd_records,
    output:
        summary=paths.RUN,
        records=paths.items(paths.RUN),
    log:
        paths.log(paths.RUN),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=evaluation_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=evaluation_settings,
        code=code_fingerprint("laserflow.evaluate"),
    message:
        "sweep: {wildcards.model} on {wildcards.dataset}, {wildcards.intervention} {wildcards.tau}, layer {wildcards.layer}, {wildcards.level}"
    script:
        "../scripts/evaluate.py"
