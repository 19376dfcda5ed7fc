# Data stage: fetch each dataset's raw source once, then write canonical JSON Lines.


rule download_dataset:
    output:
        raw="resources/downloads/{dataset}.raw",
    log:
        "logs/data/download_{dataset}.log",
    wildcard_constraints:
        dataset=name_pattern(datasets_from("url")),
    conda:
        "../envs/laserflow.yaml"
    params:
        spec=dataset_spec,
    script:
        "../scripts/download.py"


rule fetch_hub_dataset:
    input:
        code=package_sources("data/catalog.py", "data/hub.py"),
    output:
        raw="resources/downloads/{dataset}.json",
    log:
        "logs/data/fetch_{dataset}.log",
    wildcard_constraints:
        dataset=name_pattern(datasets_from("hub")),
    conda:
        "../envs/laserflow.yaml"
    resources:
        downloads=1,
    params:
        spec=dataset_spec,
    script:
        "../scripts/fetch_hub_dataset.py"


rule prepare_dataset:
    input:
        raw=raw_dataset,
        tokenizer=answer_tokenizer,
        code=DATA_SOURCES,
    output:
        dataset="resources/data/{dataset}.jsonl",
    log:
        "logs/data/prepare_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=dataset_spec,
    script:
        "../scripts/prepare_dataset.py"
