# Data stage: fetch each dataset's raw source once, then write canonical JSON Lines.


rule download_dataset:
    output:
        raw=paths.DOWNLOAD,
    log:
        "logs/data/download_{dataset}.log",
    wildcard_constraints:
        dataset=name_pattern(sources("datasets", "url")),
    conda:
        "../envs/laserflow.yaml"
    params:
        spec=dataset_spec,
        code=code_fingerprint("laserflow.data.fetch"),
    message:
        "data: download {wildcards.dataset}"
    script:
        "../scripts/download.py"


rule fetch_hub_dataset:
    output:
        raw=paths.HUB_DOWNLOAD,
    log:
        "logs/data/fetch_{dataset}.log",
    wildcard_constraints:
        dataset=name_pattern(sources("datasets", "hub")),
    conda:
        "../envs/laserflow.yaml"
    resources:
        downloads=1,
    params:
        spec=dataset_spec,
        code=code_fingerprint("laserflow.data.hub"),
    message:
        "data: fetch {wildcards.dataset} from the hub"
    script:
        "../scripts/fetch_hub_dataset.py"


rule prepare_dataset:
    input:
        raw=raw_input,
        raw_files=local_copy_files,
        tokenizer=answer_tokenizer,
        tokenizer_manifest=answer_tokenizer_manifest,
    output:
        dataset=paths.DATASET,
        source=paths.DATASET_SOURCE,
    log:
        "logs/data/prepare_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=dataset_spec,
        code=code_fingerprint("laserflow.data.prepare"),
    message:
        "data: prepare {wildcards.dataset}"
    script:
        "../scripts/prepare_dataset.py"
