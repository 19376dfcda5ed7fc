"""On a real SLURM: the small sweep through profiles/slurm equals a local run, and bad requests stop.

tests/workflow/cluster/start-slurm.sh starts a single-node SLURM on this machine (root only; it installs
slurm-wlm and munge with apt on first use). The tests run only with LASERFLOW_SLURM_TESTS=1 (as
.ci/run sets it) and are skipped, with that reason, otherwise.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from laserflow import resources
from laserflow.config import load_config

REPO = Path(__file__).resolve().parents[2]
START_SLURM = REPO / "tests" / "workflow" / "cluster" / "start-slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
TARGET = "results/tables/table1.csv"  # every configuration, base, selection and Table 1
MODELS = {
    name: {"tiny": {"family": family, "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128, "seed": 1}}
    for name, family in (("gptj", "gptj"), ("llama", "llama"), ("roberta", "roberta"))
}
# SLURM jobs: one layer group per model (sweep.group: layer) and its chosen configuration on every item.
COMPUTE_RULES = ["build_tiny_model", "svd", "evaluate_base", "evaluate_layer", "evaluate_chosen"]
LOCAL_RULES = ["prepare_dataset", "select", "table1"]  # localrules: run on the head node


def write_workdir(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    records = json.loads((REPO / "data" / "demo" / "counterfact.json").read_text())[:20]
    (workdir / "counterfact.json").write_text(json.dumps(records))
    config = {
        "models": MODELS,
        "datasets": {"counterfact": {"local": "counterfact.json"}},
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": [9]},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return workdir


def snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml", *args]


def on_slurm(*args: str) -> list[str]:
    # Poll squeue every second at first instead of the plugin's 40 s: the jobs here take seconds.
    return snakemake("--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "1", *args)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without SLURM job variables or the profile's partition and account."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SLURM_") and key not in ("LASERFLOW_PARTITION", "LASERFLOW_ACCOUNT")
    }
    return env | extra


def run_id(output: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", output)
    assert match, output[-3000:]
    return match.group(1)


def slurm_jobs(name: str) -> dict[str, dict[str, str]]:
    """SLURM job id -> state, memory request and comment of every job the run submitted."""
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", name, "--format=%i|%T|%m|%k"],
        capture_output=True, text=True, check=True,
    ).stdout
    jobs = {}
    for line in listing.splitlines():
        job_id, state, memory, comment = line.strip().split("|", 3)
        jobs[job_id] = {"state": state, "memory": memory, "comment": comment.strip()}
    return jobs


@pytest.fixture(scope="module")
def slurm():
    """A running single-node SLURM; the daemons the script started are stopped afterwards.

    Only when asked (LASERFLOW_SLURM_TESTS=1, as .ci/run does): the script installs system packages.
    Once asked, anything that keeps SLURM from starting is a failure, not a skip.
    """
    if os.environ.get("LASERFLOW_SLURM_TESTS") != "1":
        pytest.skip("the SLURM tests install (apt) and start a real SLURM as root; set LASERFLOW_SLURM_TESTS=1 to run them")
    if os.geteuid() != 0:
        pytest.fail("LASERFLOW_SLURM_TESTS=1 needs root: start-slurm.sh installs and starts slurmctld, slurmd, munged")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail("LASERFLOW_SLURM_TESTS=1 needs the SLURM executor plugin: pip install -e '.[dev]'")
    try:
        started = subprocess.run([str(START_SLURM)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{START_SLURM} did not finish in 15 minutes")
    if started.returncode != 0:
        pytest.fail(f"could not start a local SLURM with {START_SLURM}:\n{started.stderr[-2000:]}")
    yield
    subprocess.run([str(START_SLURM), "stop"], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runs(slurm, tmp_path_factory):
    """The same config run locally and through profiles/slurm (at the same time: SLURM's job
    start-up leaves the two cores idle between jobs)."""
    root = tmp_path_factory.mktemp("slurm")
    local = write_workdir(root / "local")
    cluster = write_workdir(root / "cluster")
    local_run = subprocess.Popen(
        snakemake("--cores", "2", TARGET), cwd=local, env=clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        cluster_run = subprocess.run(
            on_slurm(TARGET), cwd=cluster, env=clean_env(), capture_output=True, text=True, timeout=600
        )
        local_output, _ = local_run.communicate(timeout=600)
    finally:
        local_run.kill()
    assert local_run.returncode == 0, local_output[-3000:]
    cluster_output = cluster_run.stdout + cluster_run.stderr
    assert cluster_run.returncode == 0, cluster_output[-5000:]
    return local, cluster, cluster_output


def test_every_compute_job_ran_as_a_slurm_job_and_the_light_rules_on_the_head_node(runs):
    _, cluster, output = runs
    config = load_config(cluster / "config.yaml")
    jobs = slurm_jobs(run_id(output))
    rules = [re.match(r"rule_(\w+?)_wildcards_", job["comment"]).group(1) for job in jobs.values()]
    assert {rule: rules.count(rule) for rule in COMPUTE_RULES + LOCAL_RULES} == {
        **{rule: len(MODELS) for rule in COMPUTE_RULES},
        **{rule: 0 for rule in LOCAL_RULES},
    }
    assert {job["state"] for job in jobs.values()} == {"COMPLETED"}

    logged = {}  # rule log -> the SLURM job id it names
    for log in (cluster / "logs").rglob("*.log"):
        found = re.findall(r"SLURM job (\d+)", log.read_text())
        assert len(found) <= 1, log
        if found:
            logged[log.relative_to(cluster).as_posix()] = found[0]
    # Each SLURM job wrote exactly one rule log, and no local job did.
    assert sorted(logged.values()) == sorted(jobs)
    for model in MODELS:
        assert f"logs/{model}/counterfact/select.log" not in logged
        for run_log, rule in ((f"logs/{model}/counterfact/runs/layer1.log", "evaluate_layer"),
                              (f"logs/{model}/counterfact/chosen.log", "evaluate_chosen")):
            job = jobs[logged[run_log]]
            assert job["comment"].startswith(f"rule_{rule}_wildcards_"), job["comment"]
            assert model in job["comment"], job["comment"]
            # SLURM got the memory the workflow computes for the job (laserflow.resources).
            assert job["memory"] == f"{resources.evaluation_mem_mb(config, model)}M"


def test_the_results_equal_a_local_run(runs):
    local, cluster, _ = runs
    summaries = sorted(path.relative_to(local) for path in (local / "results").rglob("*.json"))
    assert summaries == sorted(path.relative_to(cluster) for path in (cluster / "results").rglob("*.json"))
    compared = 0
    for path in summaries:
        mine, theirs = json.loads((cluster / path).read_text()), json.loads((local / path).read_text())
        if "metrics" in mine:
            assert (mine["metrics"], mine["edits"]) == (theirs["metrics"], theirs["edits"]), path
            compared += 1
    assert compared == 3 * len(MODELS)  # per model: base, the configuration, and it chosen on every item
    with open(cluster / TARGET) as mine, open(local / TARGET) as theirs:
        rows = list(csv.DictReader(mine))
        assert rows == list(csv.DictReader(theirs))
    assert [row["model"] for row in rows] == list(MODELS)


@pytest.mark.parametrize(
    "case, env, args, message",
    [
        ("missing partition", {"LASERFLOW_PARTITION": "nosuchpartition"}, [],
         "sbatch: error: invalid partition specified: nosuchpartition"),
        ("too much memory", {}, ["--set-resources", "evaluate_base:mem_mb=100000000"],
         "sbatch: error: Memory specification can not be satisfied"),
        ("a GPU on a node without", {}, [], "sbatch: error: Invalid generic resource (gres) specification"),
    ],
)
def test_an_impossible_request_stops_with_slurms_message(runs, tmp_path, case, env, args, message):
    local, _, _ = runs
    # The local run's data and models (mtimes kept), so the first job to submit is a base evaluation.
    workdir = tmp_path / "workdir"
    shutil.copytree(local, workdir, ignore=shutil.ignore_patterns(".snakemake", "results", "logs"))
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["evaluation"]["device"] = "cuda" if "GPU" in case else "cpu"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/gptj/counterfact/base.json"
    result = subprocess.run(
        on_slurm(target, *args),  # the target before nargs="+" options
        cwd=workdir, env=clean_env(**env), capture_output=True, text=True, timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"SLURM sbatch failed. The error message was '{message}" in output
    assert "Exiting because a job execution failed" in output
    if "GPU" in case:  # the sweep rules ask SLURM for one GPU with gres (gpu_gres in rules/common.smk)
        assert "--gres=gpu:1" in output
    # Nothing left queued (SLURM keeps a rejected job with a bad memory request as FAILED).
    assert {job["state"] for job in slurm_jobs(run_id(output)).values()} <= {"FAILED"}
    assert not (workdir / target).exists()
