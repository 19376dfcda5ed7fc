# Select stage: choose (τ, ℓ, ρ) on the validation part from the per-configuration files.


rule select:
    input:
        base=base_file,
        runs=laser_run_files,
        dataset=dataset_file,
        code=package_sources("select.py", "data/catalog.py"),
    output:
        selection="results/{model}/{dataset}/selection.json",
    log:
        "logs/{model}/{dataset}/select.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/select.py"
