# Models stage: build the demo's tiny models, or snapshot a hub model once into resources/.


rule build_tiny_model:
    input:
        corpus=tiny_model_corpus,
    output:
        model=directory(paths.MODEL),
    log:
        "logs/models/build_{model}.log",
    wildcard_constraints:
        model=name_pattern(sources("models", "tiny")),
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        spec=model_spec,
        datasets=list(config["datasets"]),
        code=code_fingerprint("laserflow.tiny"),
    message:
        "models: build the tiny model {wildcards.model}"
    script:
        "../scripts/build_tiny_model.py"


rule snapshot_model:
    output:
        model=directory(paths.MODEL),
    log:
        "logs/models/snapshot_{model}.log",
    wildcard_constraints:
        model=name_pattern(sources("models", "hub")),
    conda:
        "../envs/laserflow.yaml"
    resources:
        downloads=1,
    params:
        spec=model_spec,
        code=code_fingerprint("laserflow.models"),
    message:
        "models: snapshot {wildcards.model}"
    script:
        "../scripts/snapshot_model.py"


rule model_manifest:
    input:
        model=model_input,
    output:
        manifest=paths.MANIFEST,
    log:
        "logs/models/manifest_{model}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code_fingerprint("laserflow.models"),
    message:
        "models: hash the files of {wildcards.model}"
    script:
        "../scripts/model_manifest.py"
