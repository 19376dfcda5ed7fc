# Models stage: build the demo's tiny models, or snapshot a hub model once into resources/.


rule build_tiny_model:
    input:
        corpus=tiny_model_corpus,
        code=DATA_SOURCES + package_sources("tiny.py", "prompts.py"),
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/models/build_{model}.log",
    wildcard_constraints:
        model=name_pattern(tiny_models()),
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        spec=model_spec_of,
        datasets=list(config["datasets"]),
    script:
        "../scripts/build_tiny_model.py"


rule snapshot_model:
    input:
        code=package_sources("models.py"),
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/models/snapshot_{model}.log",
    wildcard_constraints:
        model=name_pattern(hub_models()),
    conda:
        "../envs/laserflow.yaml"
    resources:
        downloads=1,
    params:
        spec=model_spec_of,
    script:
        "../scripts/snapshot_model.py"


rule model_manifest:
    input:
        model=model_dir,
        code=package_sources("models.py"),
    output:
        manifest="resources/manifests/{model}.json",
    log:
        "logs/models/manifest_{model}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    script:
        "../scripts/model_manifest.py"
