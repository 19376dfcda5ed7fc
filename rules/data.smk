# Data stage: fetch each dataset's raw source once, then write canonical JSON Lines.


rule download_dataset:
    output:
        raw="resources/downloads/{dataset}.raw",
    params:
        spec=dataset_spec,
    log:
        "logs/data/download_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/download.py"


rule prepare_counterfact:
    input:
        raw=raw_dataset,
        code=package_sources("data/__init__.py", "data/counterfact.py"),
    output:
        dataset="resources/data/{dataset}.jsonl",
    params:
        spec=dataset_spec,
    wildcard_constraints:
        dataset="counterfact",
    log:
        "logs/data/prepare_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    script:
        "../scripts/prepare_counterfact.py"
