# Models stage: build the demo's tiny models, or snapshot a hub model once into resources/.


rule build_tiny_model:
    input:
        corpus=tiny_model_corpus,
        code=package_sources("tiny.py"),
    output:
        model=directory("resources/models/{model}"),
    params:
        spec=model_spec_of,
    wildcard_constraints:
        model=name_pattern(tiny_models()),
    threads: 1
    resources:
        mem_mb=2000,
    log:
        "logs/models/build_{model}.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/build_tiny_model.py"


rule snapshot_model:
    input:
        code=package_sources("models.py"),
    output:
        model=directory("resources/models/{model}"),
    params:
        spec=model_spec_of,
    wildcard_constraints:
        model=name_pattern(hub_models()),
    resources:
        downloads=1,
    log:
        "logs/models/snapshot_{model}.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/snapshot_model.py"
