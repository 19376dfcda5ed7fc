# Config validation and the helper functions that expand the sweep grid into file names.
import re
import shutil
import sys
from pathlib import Path

from laserflow import config as lf_config
from laserflow.io import LaserflowError

try:
    lf_config.validate(config, source=", ".join(map(str, workflow.configfiles)) or "config")
except LaserflowError as err:
    sys.exit(f"laserflow: error: {err}")

REPO = Path(workflow.basedir)
PACKAGE = REPO / "src" / "laserflow"
TABLE1_FILES = ["results/tables/table1.csv", "results/tables/table1.md"]


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=r"[a-z0-9_]+",
    intervention=r"laser|zero|prune",
    tau=r"[a-z_]+",
    layer=r"\d+",
    level=r"rate[0-9.]+|rho[0-9.]+|none",


def package_sources(*modules):
    """Package modules a rule runs, as inputs, so editing them reruns what they affect."""
    return [
        str(PACKAGE / module) for module in ("__init__.py", "io.py", "cli.py", *modules)
    ]


def model_spec(model):
    return config["models"][model]


def model_dir(wildcards):
    """A model's directory: the configured local path, or where the models stage puts it."""
    spec = model_spec(wildcards.model)
    return spec["path"] if "path" in spec else f"resources/models/{wildcards.model}"


def model_dtype(wildcards):
    return model_spec(wildcards.model).get("dtype", "float32")


def batch_size(wildcards):
    return model_spec(wildcards.model).get(
        "batch_size", config["evaluation"]["batch_size"]
    )


def uses_gpu():
    return (
        0
        if config["evaluation"]["device"] == "cpu"
        else int(bool(shutil.which("nvidia-smi")))
    )


def dataset_file(wildcards):
    return f"resources/data/{wildcards.dataset}.jsonl"


def run_files(model, dataset, suffix=".json"):
    """Every configuration's result file of one (model, dataset), in the original's sweep order."""
    return [
        "results/{model}/{dataset}/runs/{intervention}/{tau}/{layer}/{level}{suffix}".format(
            model=model, dataset=dataset, suffix=suffix, **lf_config.run_key(edit)
        )
        for edit in lf_config.edits(config, model)
    ]


def laser_run_files(wildcards):
    return [
        path
        for path in run_files(wildcards.model, wildcards.dataset)
        if "/runs/laser/" in path
    ]


def base_file(wildcards):
    return f"results/{wildcards.model}/{wildcards.dataset}/base.json"


def all_selections():
    return [
        f"results/{model}/{dataset}/selection.json"
        for model in config["models"]
        for dataset in config["datasets"]
    ]


def all_sweep_figures():
    return [
        f"results/figures/{model}/{dataset}/sweep.{ext}"
        for model in config["models"]
        for dataset in config["datasets"]
        for ext in ("png", "pdf")
    ]


def svd_files(wildcards):
    """The cached exact SVD a LASER configuration truncates (none for other interventions)."""
    if wildcards.intervention != "laser" or config["svd"]["mode"] != "exact":
        return []
    return [f"resources/svd/{wildcards.model}/{wildcards.tau}/{wildcards.layer}.pt"]


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def raw_dataset(wildcards):
    """The raw source file: a configured local file, or the download of its URL."""
    spec = dataset_spec(wildcards)
    return (
        spec["local"]
        if "local" in spec
        else f"resources/downloads/{wildcards.dataset}.raw"
    )


def tiny_model_corpus(wildcards):
    """Tiny tokenizers are trained on every configured dataset, so answers are one token."""
    return [f"resources/data/{dataset}.jsonl" for dataset in config["datasets"]]


def model_spec_of(wildcards):
    return model_spec(wildcards.model)


def tiny_models():
    return [name for name, spec in config["models"].items() if "tiny" in spec]


def hub_models():
    return [name for name, spec in config["models"].items() if "hub" in spec]


def name_pattern(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


EVALUATION_SOURCES = package_sources(
    "families.py", "laser.py", "models.py", "scoring.py", "svd.py", "sweep.py"
)


def evaluation_params(wildcards):
    """Everything a sweep job needs besides its files; changing it reruns the job."""
    return {
        "model": wildcards.model,
        "dataset": wildcards.dataset,
        "dtype": model_dtype(wildcards),
        "device": config["evaluation"]["device"],
        "batch_size": batch_size(wildcards),
        "max_new_tokens": config["evaluation"]["max_new_tokens"],
        "generation_match": config["evaluation"]["generation_match"],
        "val_fraction": config["selection"]["val_fraction"],
        "svd": (
            config["svd"]
            if getattr(wildcards, "intervention", None) == "laser"
            else None
        ),
    }
