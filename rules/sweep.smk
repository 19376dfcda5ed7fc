# Sweep stage: one target per (model, dataset, intervention, τ, ℓ, level) or composite, plus the
# base model. Under sweep.group: layer, one job writes every configuration file of a (model,
# dataset, layer).


# A corrupt SVD cache stops the run here, in one line, before any job (and its outputs) is touched.
if workflow.is_main_process:
    try:
        check_svd_caches(
            sorted(
                Path(path)
                for name in config["models"]
                for path in glob.glob(paths.SVD.format(model=name, tau="*", layer="*"))
            )
        )
    except LaserflowError as err:
        sys.exit(f"laserflow: error: {err}")


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
        source_record=rules.prepare_dataset.output.source,
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


# A layer group writes the same files as the configurations' own jobs; it wins where both could.
ruleorder: evaluate_layer > evaluate_configuration


rule evaluate_configuration:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        source_record=rules.prepare_dataset.output.source,
        svd=svd_files,
        svd_records=records_of(svd_files),
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


rule evaluate_layer:
    input:
        model=group_model,
        manifest=group_input(paths.MANIFEST),
        dataset=group_input(paths.DATASET),
        source_record=group_input(paths.DATASET_SOURCE),
        svd=group_svd_files,
        svd_records=records_of(group_svd_files),
    output:
        summaries=paths.group_files(paths.RUN, LAYER_KEYS),
        records=paths.group_files(paths.items(paths.RUN), LAYER_KEYS),
    log:
        "logs/{cell}/runs/layer{layer}.log",
    wildcard_constraints:
        cell=name_pattern(grouped_cells()),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=evaluation_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=group_settings,
        configurations=layer_key_values(),
        code=code_fingerprint("laserflow.evaluate"),
    message:
        "sweep: {wildcards.cell}, layer {wildcards.layer}: every configuration of the layer"
    script:
        "../scripts/evaluate_layer.py"


use rule evaluate_configuration as evaluate_composite with:
    output:
        summary=paths.COMPOSITE_RUN,
        records=paths.items(paths.COMPOSITE_RUN),
    log:
        paths.log(paths.COMPOSITE_RUN),
    message:
        "sweep: {wildcards.model} on {wildcards.dataset}, the composite {wildcards.composite}"
