# Models stage: build the demo's tiny models, or snapshot a hub model once into resources/, and
# hash each model's files into its manifest (the rule that writes a model also writes its manifest).

# Content, not time, decides what reruns. Every job that reads a model lists its manifest, never
# the model's timestamp; here, a manifest whose model files changed (found by content: a file whose
# stat changed is rehashed) is rewritten, so that every SVD and evaluation of the model reruns in
# this run. A file that was only touched reruns nothing.
if workflow.is_main_process:
    try:
        for name in config["models"]:
            changed = lf_manifest.refresh(
                model_path(name), paths.MANIFEST.format(model=name)
            )
            if changed:
                print(f"laserflow: {changed}", file=sys.stderr)
    except LaserflowError as err:
        sys.exit(f"laserflow: error: {err}")


rule build_tiny_model:
    input:
        corpus=tiny_model_corpus,
    output:
        model=directory(paths.MODEL),
        manifest=paths.MANIFEST,
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
        code=code_fingerprint("laserflow.tiny", "laserflow.manifest"),
    message:
        "models: build the tiny model {wildcards.model}"
    script:
        "../scripts/build_tiny_model.py"


rule snapshot_model:
    output:
        model=directory(paths.MODEL),
        manifest=paths.MANIFEST,
    log:
        "logs/models/snapshot_{model}.log",
    wildcard_constraints:
        model=name_pattern(sources("models", "hub")),
    conda:
        "../envs/laserflow.yaml"
    resources:
        downloads=1,
    params:
        source=hub_source,
        code=code_fingerprint("laserflow.models", "laserflow.manifest"),
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
    wildcard_constraints:
        model=name_pattern(sources("models", "path")),
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        code=code_fingerprint("laserflow.manifest"),
    message:
        "models: hash the files of {wildcards.model}"
    script:
        "../scripts/model_manifest.py"
