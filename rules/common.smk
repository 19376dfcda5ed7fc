# Config validation and the helper functions that expand the sweep grid into file names.
import re
import shutil
import sys
from pathlib import Path

from laserflow import config as lf_config
from laserflow import resources as lf_resources
from laserflow.io import LaserflowError

try:
    lf_config.validate(
        config, source=", ".join(map(str, workflow.configfiles)) or "config"
    )
except LaserflowError as err:
    sys.exit(f"laserflow: error: {err}")

REPO = Path(workflow.basedir)
PACKAGE = REPO / "src" / "laserflow"
PAPER_TABLE = str(REPO / "data" / "paper" / "table1.csv")
STYLE = str(REPO / "styles" / "laserflow.mplstyle")
REPORT_TABLES = [
    *(
        f"results/tables/{name}.{ext}"
        for name in ("table1", "hyperparameters")
        for ext in ("csv", "md", "tex")
    ),
    "results/tables/numbers.tex",
    "results/tables/provenance.csv",
]


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


def model_path(model):
    """A model's directory: the configured local path, or where the models stage puts it."""
    spec = model_spec(model)
    if "tiny" in spec:
        return f"resources/models/{model}"
    # A pinned hub snapshot or a local copy: a new timestamp alone must not rerun the sweep.
    return ancient(spec["path"] if "path" in spec else f"resources/models/{model}")


def model_dir(wildcards):
    return model_path(wildcards.model)


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


def model_mem_mb(wildcards):
    """Host memory of an evaluate_* job (laserflow.resources)."""
    return lf_resources.evaluation_mem_mb(config, wildcards.model)


def svd_mem_mb(wildcards, input):
    """Host memory of an svd job; re-evaluated once the model directory exists."""
    return lf_resources.svd_mem_mb(config, wildcards.model, input.model)


def gpu_count(wildcards):
    """GPUs a sweep job takes from the local `gpu` pool (profiles/default: one job per
    GPU). Under a cluster executor the GPU is requested with gpu_gres instead: the
    workflow profile's pool of one would otherwise let one GPU job run at a time."""
    return 0 if workflow.non_local_exec else uses_gpu()


def gpu_gres(wildcards):
    """SLURM generic resource of a sweep job: one GPU under a cluster executor unless the config
    says device: cpu (the head node's own GPUs do not matter there); nothing locally."""
    if not workflow.non_local_exec or config["evaluation"]["device"] == "cpu":
        return ""
    return "gpu:1"


def dataset_file(wildcards):
    return f"resources/data/{wildcards.dataset}.jsonl"


def run_files(model, dataset):
    """Every configuration's result file of one (model, dataset), in the original's sweep order."""
    return [
        "results/{model}/{dataset}/runs/{intervention}/{tau}/{layer}/{level}.json".format(
            model=model, dataset=dataset, **lf_config.run_key(edit)
        )
        for edit in lf_config.edits(config, model, dataset)
    ]


def laser_run_files(wildcards):
    return [
        path
        for path in run_files(wildcards.model, wildcards.dataset)
        if "/runs/laser/" in path
    ]


def base_file(wildcards):
    return f"results/{wildcards.model}/{wildcards.dataset}/base.json"


def selection_file(wildcards):
    return f"results/{wildcards.model}/{wildcards.dataset}/selection.json"


def all_cells(pattern):
    """``pattern`` formatted for every configured (model, dataset)."""
    return [
        pattern.format(model=model, dataset=dataset)
        for model in config["models"]
        for dataset in config["datasets"]
    ]


def all_selections():
    return all_cells("results/{model}/{dataset}/selection.json")


def all_bases():
    return all_cells("results/{model}/{dataset}/base.json")


def all_figures():
    """Every figure: the sweep figure and heatmap of each (model, dataset) whose search has at
    least two configurations (one point draws no curve), and Table 1's bars."""
    cells = [
        (model, dataset)
        for model in config["models"]
        for dataset in config["datasets"]
        if len(lf_config.edits(config, model, dataset)) > 1
    ]
    return [
        f"results/figures/{model}/{dataset}/{name}.{ext}"
        for model, dataset in cells
        for name in ("sweep", "val_heatmap")
        for ext in ("png", "pdf")
    ] + [f"results/figures/table1_bars.{ext}" for ext in ("png", "pdf")]


def report_script(name):
    """A report rule's script, as an input, so editing it re-renders that artifact only."""
    return str(REPO / "scripts" / f"{name}.py")


def svd_files(wildcards):
    """The cached exact SVD a LASER configuration truncates (none for other interventions)."""
    if wildcards.intervention != "laser" or config["svd"]["mode"] != "exact":
        return []
    return [f"resources/svd/{wildcards.model}/{wildcards.tau}/{wildcards.layer}.pt"]


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def raw_source(dataset):
    """A dataset's raw source file: the configured local file, or where the data stage fetches it."""
    spec = config["datasets"][dataset]
    if "local" in spec:
        return spec["local"]
    # A checksummed download or a pinned hub revision: a new timestamp alone must not rerun
    # everything downstream.
    suffix = "raw" if "url" in spec else "json"
    return ancient(f"resources/downloads/{dataset}.{suffix}")


def raw_dataset(wildcards):
    return raw_source(wildcards.dataset)


def datasets_from(source):
    """Configured datasets whose source is ``source`` (url or hub)."""
    return [name for name, spec in config["datasets"].items() if source in spec]


def answer_tokenizer(wildcards):
    """HotPotQA's answer filter reads this model's tokenizer (none for other datasets)."""
    model = dataset_spec(wildcards).get("answer_tokenizer")
    return [] if model is None else model_path(model)


def tiny_model_corpus(wildcards):
    """Tiny tokenizers are trained on every configured dataset's raw text, so that the words the
    protocol needs as one token (answers, label words) are one token."""
    return [raw_source(dataset) for dataset in config["datasets"]]


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
    "data/catalog.py",
    "families.py",
    "laser.py",
    "models.py",
    "prompts.py",
    "scoring.py",
    "svd.py",
    "sweep.py",
)
# The data stage's modules: dataset preparation, and the tiny tokenizers' corpus.
DATA_SOURCES = package_sources(
    "data/__init__.py",
    "data/catalog.py",
    "data/counterfact.py",
    "data/hotpotqa.py",
    "data/fever.py",
    "data/bios.py",
    "data/truthfulqa.py",
    "data/bigbench.py",
)
FIGURE_SOURCES = package_sources("figures.py", "paper.py", "records.py")


def evaluation_params(wildcards):
    """Everything a sweep job needs besides its files; changing it reruns the job."""
    return {
        "model": wildcards.model,
        "dataset": wildcards.dataset,
        "dtype": model_dtype(wildcards),
        "device": config["evaluation"]["device"],
        "batch_size": batch_size(wildcards),
        "max_new_tokens": config["evaluation"].get("max_new_tokens"),
        "generation_match": config["evaluation"]["generation_match"],
        "masked_loss": config["evaluation"]["masked_loss"],
        "truthfulqa_prompt": config["evaluation"]["truthfulqa_prompt"],
        "fused_gelu": config["evaluation"]["fused_gelu"],
        "val_fraction": config["selection"]["val_fraction"],
        "svd": (
            config["svd"]
            if getattr(wildcards, "intervention", None) == "laser"
            else None
        ),
        "model_source": model_spec(wildcards.model),
        "dataset_source": dataset_spec(wildcards),
    }
