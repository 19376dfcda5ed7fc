"""What an evaluation job refuses to write: a non-finite number, a result with no validation part,
a prompt longer than the model's context; and its provenance, recorded without running git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from laserflow.evaluate import run_configuration, software_versions
from laserflow.io import LaserflowError, write_jsonl
from laserflow.paths import edits_of
from laserflow.scoring import score_items
from laserflow.settings import EvaluationPaths, EvaluationSettings, ScoringOptions, SvdSettings

REPO = Path(__file__).resolve().parents[2]


def test_a_nan_stops_the_job_naming_the_configuration_and_writes_nothing(tiny_models, demo_items, tmp_path):
    from safetensors.torch import load_file, save_file

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_models["gptj"], model_dir)
    weights = load_file(model_dir / "model.safetensors")
    weights["transformer.h.1.mlp.fc_out.weight"][0, 0] = torch.nan
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    dataset = tmp_path / "counterfact.jsonl"
    write_jsonl(dataset, demo_items[:10])
    settings = EvaluationSettings("tiny-gptj", "counterfact", scoring=ScoringOptions(batch_size=8),
                                  svd=SvdSettings(mode="randomized"))
    paths = EvaluationPaths(str(model_dir), str(dataset), str(tmp_path / "rate9.json"),
                            str(tmp_path / "rate9.items.jsonl.gz"))
    configuration = edits_of({"intervention": "laser", "tau": "fc_in", "layer": "0", "level": "rate9"})
    with pytest.raises(LaserflowError) as err:
        run_configuration(settings, configuration, paths)
    assert str(err.value) == (f"{paths.summary}: tiny-gptj on counterfact, laser fc_in layer 0 rate9: "
                              f"val logloss is nan; no result written")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counterfact.jsonl", "model"]


def test_a_validation_fraction_that_leaves_no_item_stops_before_the_model_loads(tmp_path, demo_items):
    dataset = tmp_path / "counterfact.jsonl"
    write_jsonl(dataset, demo_items[:4])
    settings = EvaluationSettings("tiny-gptj", "counterfact", val_fraction=0.2)
    paths = EvaluationPaths(str(tmp_path / "no-model"), str(dataset), str(tmp_path / "base.json"),
                            str(tmp_path / "base.items.jsonl.gz"))
    with pytest.raises(LaserflowError) as err:
        run_configuration(settings, [], paths)
    assert str(err.value) == ("selection.val_fraction: 0.2 of the 4 items of counterfact leaves no validation item; "
                              "raise it to at least 0.25")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["counterfact.jsonl"]


def test_a_prompt_longer_than_the_context_names_the_dataset_item_and_length(tiny_models, demo_items):
    from laserflow.models import load_model

    model, tokenizer, family = load_model(tiny_models["gptj"])
    long = dict(demo_items[1], question=" ".join([demo_items[1]["question"]] * 60))
    length = len(tokenizer(long["question"] + long["answer"]).input_ids)
    assert length > 512
    with pytest.raises(LaserflowError) as err:
        score_items(model, tokenizer, family, [demo_items[0], long], ScoringOptions(batch_size=8, show_progress=False))
    assert str(err.value) == f"dataset counterfact: item 1 needs {length} tokens, more than the model's context of 512"


def test_provenance_records_the_commit_without_running_git_from_the_path(tmp_path, monkeypatch):
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    commit = subprocess.run([git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    marker = tmp_path / "ran"
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 0000000000000000000000000000000000000000\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert software_versions()["laserflow_commit"] == commit
    assert not marker.exists()

