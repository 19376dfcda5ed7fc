"""Config validation: schema and semantic errors are one line naming the key; paper config expands."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from laserflow import config as lf_config
from laserflow.io import LaserflowError

from conftest import REPO

DEMO = yaml.safe_load((REPO / "config.yaml").read_text())


def mutated(change):
    config = copy.deepcopy(DEMO)
    change(config)
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["sweep"].update(rate=[1]), "key 'sweep': Additional properties are not allowed ('rate' was unexpected)"),
        (lambda c: c["sweep"].update(taus=["fc_up"]),
         "sweep.taus: 'fc_up' is not a matrix type of model 'tiny-gptj' (gptj); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out, attn, mlp, all"),
        (lambda c: c["sweep"].update(layers=[5]), "sweep.layers: layer 5 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c["sweep"].update(rates=[10]), "key 'sweep.rates.0': 10 is greater than or equal to the maximum of 10"),
        (lambda c: c["sweep"].update(rates=[]), "key 'sweep.rates': [] should be non-empty"),
        (lambda c: c["sweep"].update(rhos=[0.5]),
         "key 'sweep': the sweep needs exactly one of rates (legacy, rho = 1 - 0.1 * rate) or rhos"),
        (lambda c: c["models"]["tiny-gptj"].update(hub="EleutherAI/gpt-j-6B"),
         "key 'models.tiny-gptj': a model needs exactly one source: tiny (built locally with random weights), "
         "hub (with revision, family and layers; snapshotted once into resources/models) or path "
         "(a local transformers directory, with family and layers)"),
        (lambda c: c["evaluation"].update(generation_match="cont"),
         "key 'evaluation.generation_match': 'cont' is not one of ['full_text', 'continuation']"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(change, message):
    with pytest.raises(LaserflowError) as err:
        lf_config.validate(mutated(change), source="my.yaml")
    assert str(err.value) == f"my.yaml: {message}"


def test_defaults_are_filled_and_the_grid_follows_the_original_sweep_order():
    config = mutated(lambda c: (c.pop("svd"), c.pop("evaluation")))
    lf_config.validate(config)
    assert config["svd"] == {"mode": "exact", "seed": 0}
    assert config["evaluation"]["generation_match"] == "full_text"
    keys = [lf_config.run_key(edit) for edit in lf_config.edits(config, "tiny-gptj")]
    assert keys[:3] == [
        {"intervention": "laser", "tau": "fc_in", "layer": 2, "level": "rate9.9"},
        {"intervention": "laser", "tau": "fc_in", "layer": 2, "level": "rate2"},
        {"intervention": "laser", "tau": "fc_out", "layer": 2, "level": "rate9.9"},
    ]
    assert len(keys) == 3 * 2 * 2


def test_paper_config_expands_offline_to_the_full_search():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "configs/paper.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = dict(
        line.split() for line in (result.stdout + result.stderr).splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    # GPT-J 28, Llama-2 32, RoBERTa 12 layers × {fc_in, fc_out} × 9 rates.
    assert counts["evaluate_configuration"] == str((28 + 32 + 12) * 2 * 9)
    assert counts["svd"] == str((28 + 32 + 12) * 2)
    assert counts["evaluate_base"] == "3" and counts["snapshot_model"] == "3" and counts["download_dataset"] == "1"


def test_snakemake_reports_a_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mutated(lambda c: c["sweep"].update(layers=[7]))))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert f"laserflow: error: {bad}: sweep.layers: layer 7 is beyond model 'tiny-gptj' (layers 0..2)" in result.stderr


def test_env_file_pins_match_pyproject():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "laserflow.yaml").read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert sorted(pip) == sorted(pyproject["project"]["dependencies"])
