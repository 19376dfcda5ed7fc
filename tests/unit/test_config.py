"""Config validation: schema and semantic errors are one line naming the key; layered files; the shipped grids."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from laserflow import config as lf_config
from laserflow import sweep
from laserflow.io import LaserflowError
from laserflow.paths import run_key

REPO = Path(__file__).resolve().parents[2]

# The demo's models, on CounterFact, with a fixed grid (the demo's own grid is tuned for time).
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
DEMO["datasets"] = {"counterfact": DEMO["datasets"]["counterfact"]}
DEMO["sweep"] = {"interventions": ["laser"], "taus": ["fc_in", "fc_out"], "layers": "all", "rates": [2, 9.9]}


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
        (lambda c: c.update(report={"tolerance": -1}), "key 'report.tolerance': -1 is less than the minimum of 0"),
        (lambda c: c["evaluation"].update(masked_loss="sum"),
         "key 'evaluation.masked_loss': 'sum' is not one of ['original', 'corrected']"),
        (lambda c: c["datasets"].update(squad={"local": "squad.json"}),
         "key 'datasets': 'squad' is not one of ['counterfact', 'hotpotqa', 'fever', 'bios_gender', "
         "'bios_profession', 'truthfulqa', 'bigbench_epistemic', 'bigbench_wikidata']"),
        (lambda c: c["datasets"].update(fever={"hub": "EleutherAI/fever"}),
         "key 'datasets.fever': a dataset needs exactly one source: url (downloaded, sha256-checked; "
         "CounterFact), hub (a Hugging Face dataset id with a pinned revision) or local (a file in the raw "
         "source schema)"),
        (lambda c: c["datasets"].update(hotpotqa={"local": "hotpotqa.json"}),
         "datasets.hotpotqa.answer_tokenizer: required: the configured model whose tokenizer filters answers "
         "to at most 15 ids (the original uses Llama-2's for every model)"),
        (lambda c: c["datasets"].update(hotpotqa={"local": "hotpotqa.json", "answer_tokenizer": "llama2"}),
         "datasets.hotpotqa.answer_tokenizer: 'llama2' is not a configured model"),
        (lambda c: c.update(selected={"gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9}]}}),
         "selected.gptj: 'gptj' is not a configured model"),
        (lambda c: c.update(selected={"tiny-gptj": {"fever": [{"tau": "fc_in", "layer": 1, "rate": 9}]}}),
         "selected.tiny-gptj.fever: 'fever' is not a configured dataset"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9, "rho": 0.1}]}}),
         "key 'selected.tiny-gptj.counterfact.0': a selected configuration needs tau, layer and exactly one of "
         "rate (legacy) or rho"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9},
                                                                     {"tau": "fc_up", "layer": 1, "rate": 9}]}}),
         "selected.tiny-gptj.counterfact.1: 'fc_up' is not a matrix type of model 'tiny-gptj' (gptj); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out, attn, mlp, all"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 3, "rho": 0.5}]}}),
         "selected.tiny-gptj.counterfact.0: layer 3 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9}] * 2}}),
         "selected.tiny-gptj.counterfact: a configuration is listed twice"),
        # An export edit list naming a τ or a layer the model lacks.
        (lambda c: c.update(export={"edits": {"tiny-llama": {"counterfact": [{"tau": "fc_gate", "layer": 1, "rate": 9}]}}}),
         "export.edits.tiny-llama.counterfact.0: 'fc_gate' is not a matrix type of model 'tiny-llama' (llama); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_up, fc_out, attn, mlp, all"),
        (lambda c: c.update(export={"edits": {"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9},
                                                                            {"tau": "fc_out", "layer": 3, "rho": 0.5}]}}}),
         "export.edits.tiny-gptj.counterfact.1: layer 3 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c.update(export={"edits": {"tiny-gptj": {"fever": [{"tau": "fc_in", "layer": 1, "rate": 9}]}}}),
         "export.edits.tiny-gptj.fever: 'fever' is not a configured dataset"),
        (lambda c: c.update(export={"formats": ["dense", "gguf"]}),
         "key 'export.formats.1': 'gguf' is not one of ['dense', 'factorized']"),
        (lambda c: c["models"]["tiny-gptj"]["tiny"].update(family="gemma3"),
         "key 'models.tiny-gptj.tiny.family': 'gemma3' is not one of ['gptj', 'llama', 'roberta', 'phi', 'gpt2', "
         "'gpt_neox', 'phi3', 'qwen2', 'gemma', 'gemma2']"),
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
    keys = [run_key(edit) for edit in sweep.edits(config, "tiny-gptj", "counterfact")]
    assert keys[:3] == [
        {"intervention": "laser", "tau": "fc_in", "layer": 2, "level": "rate9.9"},
        {"intervention": "laser", "tau": "fc_in", "layer": 2, "level": "rate2"},
        {"intervention": "laser", "tau": "fc_out", "layer": 2, "level": "rate9.9"},
    ]
    assert len(keys) == 3 * 2 * 2


def test_env_file_pins_match_pyproject():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    env = yaml.safe_load((REPO / "envs" / "laserflow.yaml").read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert sorted(pip) == sorted(pyproject["project"]["dependencies"])


def test_a_selected_cell_runs_exactly_its_listed_configurations():
    config = mutated(lambda c: c.update(selected={"tiny-llama": {"counterfact": [
        {"tau": "fc_out", "layer": 0, "rho": 0.5}, {"tau": "fc_in", "layer": 2, "rate": 9.9}]}}))
    lf_config.validate(config)
    assert config["report"] == {"tolerance": 2.0}
    keys = [run_key(edit) for edit in sweep.edits(config, "tiny-llama", "counterfact")]
    assert keys == [
        {"intervention": "laser", "tau": "fc_out", "layer": 0, "level": "rho0.5"},
        {"intervention": "laser", "tau": "fc_in", "layer": 2, "level": "rate9.9"},
    ]
    assert len(sweep.edits(config, "tiny-gptj", "counterfact")) == 3 * 2 * 2  # not listed: the grid


def test_artifact_evaluation_config_lists_the_papers_published_configurations():
    from laserflow.edits import Level
    from laserflow.paper import read_paper_table

    config = lf_config.load_config(REPO / "configs" / "paper.yaml", REPO / "configs" / "paper-selected.yaml")
    assert set(yaml.safe_load((REPO / "configs" / "paper-selected.yaml").read_text())) == {"selected"}
    paper = read_paper_table(REPO / "data" / "paper" / "table1.csv")
    expected = {(model, dataset): [(cell["tau"], cell["layer"], cell["rho"])]
                for (dataset, model), cell in paper.items()
                if dataset in config["datasets"] and model in config["models"]}
    listed = {(model, dataset): [(entry["tau"], entry["layer"], Level(rate=entry["rate"]).nominal_rho)
                                 for entry in entries]
              for model, cells_of in config["selected"].items() for dataset, entries in cells_of.items()}
    assert len(expected) == 24 and listed == expected


def test_paper_figure_config_sweeps_six_matrix_types_and_fifteen_reductions():
    config = lf_config.load_config(REPO / "configs" / "paper.yaml", REPO / "configs" / "paper-figure.yaml")
    assert sweep.cells(config) == [("gptj", "counterfact")]
    edits = sweep.edits(config, "gptj", "counterfact")
    assert len(edits) == 6 * 28 * 15
    assert sorted({round(100 * (1 - edit.level.nominal_rho), 6) for edit in edits}) == [
        10, 25, 40, 50, 60, 75, 90, 92.5, 95, 97.5, 98, 98.5, 99, 99.5, 99.75]
    assert [edit.tau for edit in edits[:6 * 15:15]] == ["k_proj", "q_proj", "v_proj", "out_proj", "fc_in", "fc_out"]


def test_config_check_names_the_file_and_line_of_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  tiny-gptj:\n    tiny: {family: gptj\nsweep: [\n")
    assert lf_config.main([str(REPO / "config.yaml"), str(bad)]) == 1
    captured = capsys.readouterr()
    assert (captured.err.strip(), captured.out) == (f"laserflow: error: {bad}: malformed YAML at line 4", "")
    assert lf_config.main([str(REPO / "config.yaml")]) == 0
    assert capsys.readouterr().out.strip() == f"{REPO / 'config.yaml'}: ok"


def test_config_files_are_layered_as_snakemake_layers_them(tmp_path, capsys):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("cells: {tiny-llama: [fever]}\nsweep: {rates: [9]}\nevaluation: {threads: 2}\n")
    config = lf_config.load_config(REPO / "config.yaml", overlay)
    assert sweep.cells(config) == [("tiny-llama", "fever")]
    # Mappings merge key by key; a list replaces the base file's.
    assert (config["sweep"]["rates"], config["sweep"]["layers"], config["evaluation"]["threads"],
            config["evaluation"]["batch_size"]) == ([9], [1, 2], 2, 64)
    assert lf_config.main([str(REPO / "config.yaml"), str(overlay)]) == 0
    assert capsys.readouterr().out.strip() == f"{REPO / 'config.yaml'} + {overlay}: ok"
    assert sweep.cells(lf_config.load_config(REPO / "config.yaml"))[:2] == [("tiny-gptj", "counterfact"),
                                                                           ("tiny-gptj", "hotpotqa")]


def test_memory_requests_follow_the_paper_models_size_and_dtype(tmp_path):
    from laserflow import resources

    config = lf_config.load_config(REPO / "configs" / "paper.yaml")
    # GPT-J 6.05 B × 2 bytes, Llama-2 6.74 B × 4 bytes, RoBERTa 125 M × 4 bytes; +10% and 3 GB, in 1 GB steps.
    assert [resources.evaluation_mem_mb(config, model) for model in ("gptj", "llama2", "roberta")] == [
        17000, 33000, 4000]
    (tmp_path / "model.safetensors").write_bytes(b"")
    # One layer's matrices in float32, four copies, when the weights can be read tensor by tensor.
    assert resources.svd_mem_mb(config, "gptj", tmp_path) == 7000  # 16 B × 6.05 B / 28 = 3.46 GB
    # GPT-J's float16 branch has only pytorch_model.bin: the whole model in float32 plus its fp16 load.
    assert resources.svd_mem_mb(config, "gptj", tmp_path / "empty") == 43000


def test_tiny_architectures_check_against_their_family():
    """A tiny Gemma-2 is a model of the llama family (its τ names); Phi-3 has the fused parts."""
    config = mutated(lambda c: c["models"].update(
        gemma2={"tiny": {"family": "gemma2", "layers": 2}}, phi3={"tiny": {"family": "phi3", "layers": 2}}))
    config["cells"] = {"gemma2": ["counterfact"], "phi3": ["counterfact"]}
    config["sweep"]["taus"] = ["fc_in", "fc_up"]
    lf_config.validate(config)
    assert (sweep.model_info(config, "gemma2").family, sweep.model_info(config, "phi3").family) == ("llama", "phi3")
    config["export"] = {"edits": {"phi3": {"counterfact": [{"tau": "fc_gate", "layer": 1, "rate": 9},
                                                           {"tau": "k_proj", "layer": 0, "rho": 0.5}]}}}
    lf_config.validate(config)
    assert [run_key(edit) for edit in sweep.export_edits(config, "phi3", "counterfact")] == [
        {"intervention": "laser", "tau": "fc_gate", "layer": 1, "level": "rate9"},
        {"intervention": "laser", "tau": "k_proj", "layer": 0, "level": "rho0.5"}]
    assert config["export"]["formats"] == ["dense", "factorized"] and sweep.export_edits(config, "gemma2", "counterfact") is None
    config["sweep"]["taus"] = ["fc_gate"]
    with pytest.raises(LaserflowError, match="sweep.taus: 'fc_gate' is not a matrix type of model 'gemma2' "):
        lf_config.validate(config)


def test_the_modern_config_runs_todays_models_at_pinned_commits_on_the_papers_grid():
    import re

    config = lf_config.load_config(REPO / "configs" / "paper.yaml", REPO / "configs" / "modern.yaml")
    modern = {"gpt2": ("gpt2", 12), "pythia": ("gpt_neox", 24), "llama3": ("llama", 32), "qwen25": ("llama", 28),
              "gemma": ("llama", 18), "gemma2": ("llama", 42), "phi3": ("phi3", 32)}
    assert {name: (config["models"][name]["family"], config["models"][name]["layers"]) for name in modern} == modern
    assert all(re.fullmatch(r"[0-9a-f]{40}", config["models"][name]["revision"]) for name in modern)
    assert sweep.cells(config) == [(model, dataset) for model in modern for dataset in config["datasets"]]
    # τ ∈ {fc_in, fc_out} × every layer × 9 rates on 8 datasets: Phi-3's fc_in is its fused gate_up_proj.
    assert sum(len(sweep.edits(config, model, dataset)) for model, dataset in sweep.cells(config)) == 8 * 188 * 2 * 9
