# Data stage: fetch each dataset's raw source once, then write canonical JSON Lines.


rule download_dataset:
    output:
        raw="resources/downloads/{dataset}.raw",
    log:
        "logs/data/download_{dataset}.log",
    conda:
        "../envs/laserflow.yaml"
    params:
        spec=dataset_spec,
    script:
        "../scripts/download.py"


rule prepare_counterfact:
    input:
        raw=raw_dataset,
        code=package_sources("data/__init__.py", "data/counterfact.py"),
    output:
        dataset="resources/data/{dataset}.jsonl",
    log:
        "logs/data/prepare_{dataset}.log",
    wildcard_constraints:
        dataset="counterfact",
    conda:
        "../envs/laserflow.yaml"
    params:
        spec=dataset_spec,
    script:
        "../scripts/prepare_counterfact.py"
