"""Content, not time, decides what reruns: changed weights rerun their SVDs and evaluations with the
new hashes in provenance, touched files rerun nothing, a new hub revision re-snapshots, and a
corrupt SVD cache is one line that keeps every finished result.

Two models: ``local`` (a ``path:`` directory) and ``hub`` (snapshotted from a stand-in for the hub:
``sitecustomize`` replaces ``huggingface_hub.snapshot_download`` by a copy of ``hub/<revision>``).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import yaml

from laserflow.io import read_json, sha256_file

TARGETS = ["results/local/counterfact/selection.json", "results/hub/counterfact/selection.json"]
FAKE_HUB = """
import os, shutil
import huggingface_hub


def snapshot_download(repo_id, revision, local_dir, **options):
    source = os.path.join(os.environ["LASERFLOW_FAKE_HUB"], revision)
    for name in os.listdir(source):
        shutil.copy(os.path.join(source, name), local_dir)
    return local_dir


huggingface_hub.snapshot_download = snapshot_download
"""


def write_config(workdir, revision="a", rates=(9,)):
    config = {
        "models": {"local": {"path": "local-model", "family": "gptj", "layers": 3},
                   "hub": {"hub": "org/tiny-gptj", "revision": revision, "family": "gptj", "layers": 3}},
        "datasets": {"counterfact": {"local": "counterfact.json"}},
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": list(rates)},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def flip_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    with open(path, "r+b") as handle:  # in place: the folder's timestamp does not change
        handle.write(bytes(data))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_models, demo_counterfact, snakemake):
    workdir = tmp_path_factory.mktemp("integrity")
    (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:10]))
    shutil.copytree(tiny_models["gptj"], workdir / "local-model")
    for revision in ("a", "b"):
        shutil.copytree(tiny_models["gptj"], workdir / "hub" / revision)
    flip_byte(workdir / "hub" / "b" / "model.safetensors")
    (workdir / "site").mkdir()
    (workdir / "site" / "sitecustomize.py").write_text(FAKE_HUB)
    write_config(workdir)
    env = dict(os.environ, LASERFLOW_FAKE_HUB=str(workdir / "hub"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(workdir / "site"), os.environ.get("PYTHONPATH")])))

    def run(*args, check=True):
        return snakemake(workdir, *args, *TARGETS, env=env, check=check)

    run()
    return workdir, run


def planned(run, planned_jobs):
    output = run("-n").output
    return output, ({} if "Nothing to be done" in output else planned_jobs(output))


def weights_in(workdir, model):
    """The model.safetensors sha256 each of a model's results names."""
    results = sorted((workdir / "results" / model).rglob("*.json"))
    return {read_json(path)["provenance"]["model"]["weights"]["model.safetensors"]
            for path in results if path.name != "selection.json"}


def test_touched_weights_rerun_nothing(workdir):
    workdir, run = workdir
    assert "Nothing to be done" in run("-n").output
    later = time.time() + 60
    for folder in (workdir / "local-model", workdir / "resources" / "models" / "hub"):
        for path in folder.iterdir():
            os.utime(path, (later, later))
    assert "Nothing to be done" in run("-n").output


def test_a_changed_weight_byte_reruns_the_models_svds_and_evaluations_with_the_new_hash(workdir, planned_jobs):
    workdir, run = workdir
    weights = workdir / "local-model" / "model.safetensors"
    before = sha256_file(weights)
    assert weights_in(workdir, "local") == {before}
    flip_byte(weights)
    output, jobs = planned(run, planned_jobs)
    assert ("laserflow: local-model: model.safetensors changed since resources/manifests/local.json was written; "
            "rehashed, so every SVD and evaluation of this model reruns") in output
    assert jobs == {"svd": 1, "evaluate_base": 1, "evaluate_layer": 1, "select": 1}
    run()
    assert weights_in(workdir, "local") == {sha256_file(weights)} != {before}
    assert read_json(workdir / "resources/manifests/local.json")["files"]["model.safetensors"] == sha256_file(weights)
    assert "Nothing to be done" in run("-n").output


def test_a_new_hub_revision_resnapshots_and_reruns_everything_of_that_model(workdir, planned_jobs):
    workdir, run = workdir
    assert weights_in(workdir, "hub") == {sha256_file(workdir / "hub" / "a" / "model.safetensors")}
    write_config(workdir, revision="b")
    _, jobs = planned(run, planned_jobs)
    assert jobs == {"snapshot_model": 1, "svd": 1, "evaluate_base": 1, "evaluate_layer": 1, "select": 1}
    run()
    assert weights_in(workdir, "hub") == {sha256_file(workdir / "hub" / "b" / "model.safetensors")}


def test_a_corrupt_svd_cache_is_one_line_and_keeps_every_result(workdir):
    """A touched cache is verified and reruns nothing; a damaged one stops the run when the workflow
    is read, before any job (and so before Snakemake removes the outputs of the layer job that
    would read it)."""
    workdir, run = workdir
    cache = workdir / "resources/svd/local/fc_in/1.pt"
    result = workdir / "results/local/counterfact/runs/laser/fc_in/1/rate9.json"
    results = sorted((workdir / "results").rglob("*.json"))
    good = cache.read_bytes()
    finished = [(path.read_bytes(), path.stat().st_mtime_ns) for path in results]
    later = time.time() + 60
    os.utime(cache, (later, later))
    assert "Nothing to be done" in run("-n").output
    data = bytearray(good)
    middle = len(data) // 2
    data[middle:middle + 400] = bytes(byte ^ 0xFF for byte in data[middle:middle + 400])
    write_config(workdir, revision="b", rates=(9, 2))  # a new configuration would read the cache
    for damaged in (bytes(data), good[: len(good) // 2]):  # 400 flipped bytes of the same size, then truncated
        cache.write_bytes(damaged)
        for args in (("-n",), ()):
            failed = run(*args, check=False)
            assert failed.returncode != 0
            assert ("laserflow: error: resources/svd/local/fc_in/1.pt: corrupt SVD cache (sha256 "
                    in failed.output.splitlines()[-1])
            assert failed.output.rstrip().endswith("delete it and rerun snakemake, which rebuilds it")
            assert not result.with_name("rate2.json").exists()
            assert [(path.read_bytes(), path.stat().st_mtime_ns) for path in results] == finished
    cache.unlink()  # as the message says
    run()
    assert cache.read_bytes() == good
    assert result.with_name("rate2.json").exists()
    assert read_json(result)["provenance"]["svd_sha256"] == {
        "resources/svd/local/fc_in/1.pt": sha256_file(cache)}
