# Export stage: the selected configuration (or an export.edits list) as a Hugging Face model
# directory and as low-rank factors, with a model card. Asked for by name, not part of `all`:
#   snakemake --cores 2 export/{model}/{dataset}
rule export:
    input:
        model=model_input,
        manifest=rules.model_manifest.output.manifest,
        dataset=rules.prepare_dataset.output.dataset,
        base=rules.evaluate_base.output.summary,
        choice=export_choice,
        chosen=export_chosen,
        svd=export_svd_files,
        svd_records=records_of(export_svd_files),
    output:
        export=directory(paths.EXPORT),
    log:
        paths.log(paths.EXPORT),
    wildcard_constraints:
        model=name_pattern(config["models"]),
        dataset=name_pattern(config["datasets"]),
    conda:
        "../envs/laserflow.yaml"
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=export_mem_mb,
        gpu=local_gpus,
        gres=gpu_gres,
    params:
        settings=export_settings,
        options=export_options,
        code=code_fingerprint("laserflow.export"),
    message:
        "export: {wildcards.model} on {wildcards.dataset}"
    script:
        "../scripts/export.py"
