# Sweep stage: one target per (model, dataset, intervention, τ, ℓ, level), plus the base model.


rule svd:
    input:
        model=model_dir,
        code=package_sources("families.py", "laser.py", "models.py", "svd.py"),
    output:
        factors="resources/svd/{model}/{tau}/{layer}.pt",
    log:
        "logs/svd/{model}/{tau}/{layer}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=svd_mem_mb,
    script:
        "../scripts/svd.py"


rule evaluate_base:
    input:
        model=model_dir,
        manifest="resources/manifests/{model}.json",
        dataset=dataset_file,
        code=EVALUATION_SOURCES,
    output:
        summary="results/{model}/{dataset}/base.json",
        records="results/{model}/{dataset}/base.items.jsonl.gz",
    log:
        "logs/{model}/{dataset}/base.log",
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=model_mem_mb,
        gpu=gpu_count,
        gres=gpu_gres,
    params:
        evaluation=evaluation_params,
    script:
        "../scripts/evaluate.py"


rule evaluate_configuration:
    input:
        model=model_dir,
        manifest="resources/manifests/{model}.json",
        dataset=dataset_file,
        svd=svd_files,
        code=EVALUATION_SOURCES,
    output:
        summary="results/{model}/{dataset}/runs/{intervention}/{tau}/{layer}/{level}.json",
        records="results/{model}/{dataset}/runs/{intervention}/{tau}/{layer}/{level}.items.jsonl.gz",
    log:
        "logs/{model}/{dataset}/runs/{intervention}/{tau}/{layer}/{level}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=model_mem_mb,
        gpu=gpu_count,
        gres=gpu_gres,
    params:
        evaluation=evaluation_params,
    script:
        "../scripts/evaluate.py"
