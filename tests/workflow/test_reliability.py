"""Reliability: deterministic result files, provenance, and no lost work after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest
import yaml

from laserflow.io import read_json

REPO = Path(__file__).resolve().parents[2]

CONFIG = {
    "models": {"gptj": {"tiny": {"family": "gptj", "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128}}},
    "datasets": {"counterfact": {"local": "counterfact.json"}},
    # One job per configuration, so that a kill lands between finished configurations.
    "sweep": {"taus": ["fc_in", "fc_out"], "layers": "all", "rates": [9, 2], "group": "configuration"},
    "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
}


def snakemake_command(*args):
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
            "--cores", "2", "--rerun-incomplete", *args]


def prepare(workdir):
    records = json.loads((REPO / "data" / "demo" / "counterfact.json").read_text())[:10]
    (workdir / "counterfact.json").write_text(json.dumps(records))
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))


def run(workdir, *args):
    result = subprocess.run(snakemake_command(*args), cwd=workdir, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def result_files(workdir):
    """Every summary without its timing, and every per-item file's bytes."""
    out = {}
    for path in sorted((workdir / "results").rglob("*")):
        if path.name.endswith(".json"):
            summary = read_json(path)
            summary.pop("timing", None)
            out[str(path.relative_to(workdir))] = summary
        elif path.name.endswith(".items.jsonl.gz"):
            out[str(path.relative_to(workdir))] = path.read_bytes()
    return out


def recorded_complete(workdir, path) -> bool:
    """Whether Snakemake recorded the job writing ``path`` as finished (no incomplete marker).

    A job killed between its output's rename and Snakemake's bookkeeping is rerun, rightly.
    """
    marker = urlsafe_b64encode(str(path.relative_to(workdir)).encode()).decode()
    return not (workdir / ".snakemake" / "incomplete" / marker).exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    prepare(workdir)
    run(workdir)
    return workdir


def test_rerunning_a_configuration_gives_identical_files(reference):
    target = "results/gptj/counterfact/runs/laser/fc_in/1/rate9.json"
    before = result_files(reference)
    run(reference, "--forcerun", target, "--until", target)
    assert result_files(reference) == before


def test_a_result_file_says_how_it_was_made(reference):
    summary = read_json(reference / "results/gptj/counterfact/runs/laser/fc_out/0/rate2.json")
    # fc_out is 64x128: rate 2 keeps int(64 · 0.8) = 51.
    assert summary["edits"] == [{"intervention": "laser", "tau": "fc_out", "layer": 0, "level": "rate2",
                                 "rho": 0.8, "rate": 2.0, "matrices": {
                                     "transformer.h.0.mlp.fc_out.weight": {"shape": [64, 128], "kept_rank": 51}}}]
    assert summary["svd"] == {"mode": "exact", "seed": 0}
    provenance = summary["provenance"]
    assert provenance["model"]["source"]["tiny"]["family"] == "gptj"
    weights = provenance["model"]["weights"]
    from laserflow.io import sha256_file

    assert weights["model.safetensors"] == sha256_file(reference / "resources/models/gptj/model.safetensors")
    assert provenance["dataset"]["source"] == {"local": "counterfact.json", "size_mismatch": "error"}
    assert provenance["dataset"]["processed_sha256"] == sha256_file(reference / "resources/data/counterfact.jsonl")
    assert provenance["dataset"]["raw_files"] == {"counterfact.json": sha256_file(reference / "counterfact.json")}
    assert provenance["svd_files"] == ["resources/svd/gptj/fc_out/0.pt"]
    assert provenance["device"] == "cpu" and provenance["dtype"] == "float32"
    assert provenance["activation"] == "gelu_pytorch_tanh"  # evaluation.fused_gelu defaults to true
    software = provenance["software"]
    assert {"python", "torch", "transformers", "datasets", "snakemake", "laserflow"} <= set(software)
    assert set(summary["timing"]) == {"load_seconds", "edit_seconds", "score_seconds", "layer_tokens", "flops"}


def test_sigkill_midway_loses_no_finished_work(reference, tmp_path):
    prepare(tmp_path)
    process = subprocess.Popen(snakemake_command(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    runs = tmp_path / "results/gptj/counterfact/runs"
    deadline = time.monotonic() + 600
    while sum(recorded_complete(tmp_path, path) for path in runs.rglob("*.json")) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {path: (path.stat().st_mtime_ns, path.read_bytes())
                for path in runs.rglob("*.json") if recorded_complete(tmp_path, path)}
    assert 1 <= len(finished) < 8, "the kill did not land midway"
    run(tmp_path, "--unlock")
    run(tmp_path)
    for path, (stamp, content) in finished.items():
        assert path.stat().st_mtime_ns == stamp and path.read_bytes() == content, path
    assert result_files(tmp_path) == result_files(reference)
