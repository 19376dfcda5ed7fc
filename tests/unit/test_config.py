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
del DEMO["robustness"]  # its cells name the demo's other datasets
DEMO["sweep"] = {"interventions": ["laser"], "taus": ["fc_in", "fc_out"], "layers": "all", "rates": [2, 9.9]}
for block in ("compose", "analysis"):
    DEMO[block] = {"enabled": True, "cells": {"tiny-gptj": ["counterfact"]}}


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
         "key 'selected.tiny-gptj.counterfact.0': a laser (the default) or prune edit needs tau, layer and exactly "
         "one of rate (legacy) or rho"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"intervention": "prune", "tau": "fc_in",
                                                                     "layer": 1}]}}),
         "key 'selected.tiny-gptj.counterfact.0': a laser (the default) or prune edit needs tau, layer and exactly "
         "one of rate (legacy) or rho"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"intervention": "zero", "tau": "fc_in",
                                                                     "layer": 1, "rate": 9}]}}),
         "key 'selected.tiny-gptj.counterfact.0': a selected configuration is one edit (intervention laser, the "
         "default, or prune, with tau, layer and one of rate or rho; or zero, with tau and layer only) or a composite "
         "({composite: [edit, edit, ...]}, at least two edits applied together)"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"intervention": "svd", "tau": "fc_in",
                                                                     "layer": 1, "rate": 9}]}}),
         "key 'selected.tiny-gptj.counterfact.0.intervention': 'svd' is not one of ['laser', 'zero', 'prune']"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"composite": [{"tau": "fc_in", "layer": 1,
                                                                                    "rate": 9}]}]}}),
         "key 'selected.tiny-gptj.counterfact.0.composite': [{'tau': 'fc_in', 'layer': 1, 'rate': 9}] is too short"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"composite": [
            {"tau": "fc_in", "layer": 1, "rate": 9}, {"intervention": "zero", "tau": "fc_up", "layer": 2}]}]}}),
         "selected.tiny-gptj.counterfact.0.composite.1: 'fc_up' is not a matrix type of model 'tiny-gptj' (gptj); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out, attn, mlp, all"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"composite": [
            {"tau": "mlp", "layer": 1, "rate": 9}, {"intervention": "zero", "tau": "fc_in", "layer": 1}]}]}}),
         "selected.tiny-gptj.counterfact.0: the composite edits transformer.h.1.mlp.fc_in.weight twice"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [
            {"composite": [{"tau": "fc_in", "layer": 1, "rate": 9}, {"intervention": "zero", "tau": "fc_out", "layer": 2}]},
            {"composite": [{"intervention": "zero", "tau": "fc_out", "layer": 2}, {"tau": "fc_in", "layer": 1, "rate": 9}]},
        ]}}), "selected.tiny-gptj.counterfact: a configuration is listed twice"),
        (lambda c: c["models"]["tiny-roberta"].update(sweep={"taus": ["fc_up"]}),
         "models.tiny-roberta.sweep.taus: 'fc_up' is not a matrix type of model 'tiny-roberta' (roberta); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out"),
        (lambda c: c["models"]["tiny-llama"].update(sweep={"layers": [0, 3]}),
         "models.tiny-llama.sweep.layers: layer 3 is beyond model 'tiny-llama' (layers 0..2)"),
        (lambda c: c["models"]["tiny-llama"].update(sweep={"rates": [9], "rhos": [0.1]}),
         "key 'models.tiny-llama.sweep': a model's sweep takes at most one of rates (legacy) or rhos"),
        (lambda c: c["models"]["tiny-llama"].update(sweep={"rate": [9]}),
         "key 'models.tiny-llama.sweep': Additional properties are not allowed ('rate' was unexpected)"),
        (lambda c: c.update(cells={"tiny-gptj": ["fever"]}), "cells.tiny-gptj: 'fever' is not a configured dataset"),
        (lambda c: c.update(robustness={"enabled": True, "cells": {"gptj": ["counterfact"]}}),
         "robustness.cells.gptj: 'gptj' is not a configured model"),
        (lambda c: c.update(robustness={"enabled": True, "draws": 0}),
         "key 'robustness.draws': 0 is less than the minimum of 1"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 3, "rho": 0.5}]}}),
         "selected.tiny-gptj.counterfact.0: layer 3 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rate": 9}] * 2}}),
         "selected.tiny-gptj.counterfact: a configuration is listed twice"),
        (lambda c: c.update(compose={"enabled": True, "steps": [0.45, 0.9]}),
         "compose.steps: [0.45, 0.9] must rise strictly from 0 (the unmodified matrix)"),
        (lambda c: c.update(compose={"enabled": True, "steps": [0, 0.9, 0.45]}),
         "compose.steps: [0, 0.9, 0.45] must rise strictly from 0 (the unmodified matrix)"),
        (lambda c: c.update(compose={"steps": [0, 1]}),
         "key 'compose.steps.1': 1 is greater than or equal to the maximum of 1"),
        (lambda c: c.update(compose={"enabled": True, "layers": [2, 3]}),
         "compose.layers: layer 3 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c.update(compose={"enabled": True, "layers": [2, 2]}), "compose.layers: a layer is listed twice"),
        (lambda c: c.update(compose={"enabled": True, "taus": ["fc_up"]}),
         "compose.taus: 'fc_up' is not a matrix type of model 'tiny-gptj' (gptj); "
         "valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out, attn, mlp, all"),
        (lambda c: c.update(compose={"enabled": True, "cells": {"tiny-gptj": ["fever"]}}),
         "compose.cells.tiny-gptj: 'fever' is not a configured dataset"),
        (lambda c: c.update(analysis={"cells": {"gptj": ["counterfact"]}}),
         "analysis.cells.gptj: 'gptj' is not a configured model"),
        (lambda c: c.update(analysis={"enabled": True, "configuration": {"tau": "fc_in", "layer": 5, "rho": 0.1}}),
         "analysis.configuration.layer: layer 5 is beyond model 'tiny-gptj' (layers 0..2)"),
        (lambda c: c.update(analysis={"shares": [0.5, 0.1]}), "analysis.shares: [0.5, 0.1] must rise strictly"),
        (lambda c: c.update(analysis={"shares": [0, 0.5]}),
         "key 'analysis.shares.0': 0 is less than or equal to the minimum of 0"),
        (lambda c: c["sweep"].update(rates=[2, 9.9, 2.0]), "sweep.rates: 2.0 is listed twice"),
        (lambda c: (c["sweep"].pop("rates"), c["sweep"].update(rhos=[0.5, 0.1, 0.5])), "sweep.rhos: 0.5 is listed twice"),
        (lambda c: c["sweep"].update(layers=[1, 2, 1]), "sweep.layers: 1 is listed twice"),
        (lambda c: c["sweep"].update(taus=["fc_in", "fc_in"]), "sweep.taus: 'fc_in' is listed twice"),
        (lambda c: c["sweep"].update(rates=[2, 9.9999999]),
         "sweep.rates: rate 9.9999999 has no exact file-name label (it would be 'rate10'); "
         "use a plain decimal of at most 6 significant digits"),
        (lambda c: c["sweep"].update(rates=[0.00001]),
         "sweep.rates: rate 1e-05 has no exact file-name label (it would be 'rate1e-05'); "
         "use a plain decimal of at most 6 significant digits"),
        (lambda c: c.update(selected={"tiny-gptj": {"counterfact": [{"tau": "fc_in", "layer": 1, "rho": 0.12345678}]}}),
         "selected.tiny-gptj.counterfact.0: rho 0.12345678 has no exact file-name label (it would be 'rho0.123457'); "
         "use a plain decimal of at most 6 significant digits"),
        (lambda c: c["evaluation"].update(device="gpu"), "evaluation.device: 'gpu' is not one of auto, cpu, cuda, cuda:N"),
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


def test_composition_and_analysis_are_off_by_default_and_visit_layers_from_the_last():
    config = mutated(lambda c: (c.pop("compose"), c.pop("analysis")))
    lf_config.validate(config)
    assert sweep.block_cells(config, "compose") == sweep.block_cells(config, "analysis") == []
    config["compose"]["enabled"] = True
    assert sweep.block_cells(config, "compose") == sweep.cells(config)
    # A block's cells that the run does not evaluate are skipped (e.g. when a layered file narrows the run).
    config |= {"cells": {"tiny-llama": ["counterfact"]}, "analysis": config["analysis"] | {
        "enabled": True, "cells": {"tiny-gptj": ["counterfact"], "tiny-llama": ["counterfact"]}}}
    assert sweep.block_cells(config, "analysis") == [("tiny-llama", "counterfact")]
    plan = sweep.ComposePlan.from_config(config, "tiny-gptj")
    assert (plan.layers, plan.taus, plan.steps) == ((2, 1, 0), ("fc_in",), (0.0, 0.45, 0.9, 0.94, 0.98))
    # The original's reductions and kept ranks for a 4096-wide matrix: 2252, 409, 245, 81 of 4096.
    assert [plan.edit("fc_in", 2, step).level.kept_rank((16384, 4096)) for step in plan.steps[1:]] == [2252, 409, 245, 81]
    assert sweep.analysis_edit(config) is None


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
    assert set(yaml.safe_load((REPO / "configs" / "paper-selected.yaml").read_text())) == {"selected", "compose", "analysis"}
    assert sweep.block_cells(config, "compose") == sweep.block_cells(config, "analysis") == []
    paper = read_paper_table(REPO / "data" / "paper" / "table1.csv")
    expected = {(model, dataset): [(cell["tau"], cell["layer"], cell["rho"])]
                for (dataset, model), cell in paper.items()
                if dataset in config["datasets"] and model in config["models"]}
    listed = {(model, dataset): [(entry["tau"], entry["layer"], Level(rate=entry["rate"]).nominal_rho)
                                 for entry in entries]
              for model, cells_of in config["selected"].items() for dataset, entries in cells_of.items()}
    assert len(expected) == 24 and listed == expected


def test_paper_robustness_config_redraws_the_published_configurations_ten_times():
    selected = lf_config.load_config(REPO / "configs" / "paper.yaml", REPO / "configs" / "paper-selected.yaml")
    config = lf_config.load_config(REPO / "configs" / "paper.yaml", REPO / "configs" / "paper-robustness.yaml")
    assert config["selected"] == selected["selected"]
    assert config["robustness"] == {"enabled": True, "draws": 10, "top_k": 1}
    assert len(sweep.robustness_cells(config)) == 24
    assert sweep.robustness_cells(lf_config.load_config(REPO / "configs" / "paper.yaml")) == []


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


def test_selected_entries_name_interventions_and_composites_with_their_own_targets():
    from laserflow.edits import Composite
    from laserflow.paths import edits_of, run_file

    config = mutated(lambda c: c.update(selected={
        "tiny-llama": {"counterfact": [
            {"tau": "fc_in", "layer": 2, "rate": 9.9},
            {"intervention": "zero", "tau": "fc_out", "layer": 0},
            {"intervention": "prune", "tau": "fc_in", "layer": 1, "rho": 0.5},
            {"composite": [{"tau": "fc_in", "layer": 2, "rate": 9.9}, {"intervention": "zero", "tau": "fc_out", "layer": 0}]},
        ]},
        "tiny-gptj": {"counterfact": [{"intervention": "zero", "tau": "fc_in", "layer": 1}]},
    }))
    lf_config.validate(config)
    configurations = sweep.edits(config, "tiny-llama", "counterfact")
    assert [run_file("tiny-llama", "counterfact", configuration) for configuration in configurations] == [
        "results/tiny-llama/counterfact/runs/laser/fc_in/2/rate9.9.json",
        "results/tiny-llama/counterfact/runs/zero/fc_out/0/none.json",
        "results/tiny-llama/counterfact/runs/prune/fc_in/1/rho0.5.json",
        "results/tiny-llama/counterfact/runs/composite/laser-fc_in-2-rate9.9+zero-fc_out-0-none.json",
    ]
    # A target's wildcards give back its edits; a composite's label names every edit.
    assert [edits_of(run_key(configuration)) for configuration in configurations] == [
        [configurations[0]], [configurations[1]], [configurations[2]], list(configurations[3].edits)]
    assert configurations[3] == Composite((configurations[0], configurations[1]))
    # Only single LASER edits compete in selection; a cell without one is evaluated without a selection.
    assert [sweep.is_candidate(configuration) for configuration in configurations] == [True, False, False, False]
    assert ("tiny-llama", "counterfact") in sweep.selected_cells(config)
    assert ("tiny-gptj", "counterfact") not in sweep.selected_cells(config)


def test_robustness_redraws_the_listed_cells_that_have_a_selection():
    config = mutated(lambda c: c.update(
        models={name: c["models"][name] for name in ("tiny-gptj", "tiny-llama")},
        datasets=dict(c["datasets"], fever={"local": "fever.json"}),
        cells={"tiny-gptj": ["counterfact", "fever"], "tiny-llama": ["counterfact"]},
        selected={"tiny-gptj": {"fever": [{"intervention": "zero", "tau": "fc_in", "layer": 1}]}},
        robustness={"enabled": True, "cells": {"tiny-gptj": ["counterfact", "fever"], "tiny-llama": ["fever"]}}))
    lf_config.validate(config)
    # tiny-gptj/fever has no LASER configuration and tiny-llama/fever does not run: both skipped.
    assert sweep.robustness_cells(config) == [("tiny-gptj", "counterfact")]
    config["robustness"].pop("cells")
    assert sweep.robustness_cells(config) == [("tiny-gptj", "counterfact"), ("tiny-llama", "counterfact")]
    config["robustness"]["enabled"] = False
    assert sweep.robustness_cells(config) == []


def test_a_models_sweep_overrides_the_global_grid_key_by_key():
    config = mutated(lambda c: (c["models"]["tiny-roberta"].update(sweep={"layers": [0], "rhos": [0.5]}),
                                c["models"]["tiny-llama"].update(sweep={"taus": ["fc_up"]})))
    lf_config.validate(config)
    labels = {model: [configuration.label for configuration in sweep.edits(config, model, "counterfact")]
              for model in config["models"]}
    assert labels["tiny-roberta"] == ["laser-fc_in-0-rho0.5", "laser-fc_out-0-rho0.5"]
    assert labels["tiny-llama"] == [f"laser-fc_up-{layer}-{level}" for layer in (2, 1, 0) for level in ("rate9.9", "rate2")]
    assert len(labels["tiny-gptj"]) == 3 * 2 * 2  # the global grid


def test_config_check_lists_the_levels_that_keep_rank_0_where_shapes_are_known(tmp_path, capsys):
    (tmp_path / "gqa").mkdir()
    # A Llama-style config.json with grouped-query attention: k_proj and v_proj are 16 x 64.
    (tmp_path / "gqa" / "config.json").write_text(
        '{"model_type": "llama", "hidden_size": 64, "intermediate_size": 200, "num_attention_heads": 4, '
        '"num_key_value_heads": 1}')
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({
        "models": {"tiny-gptj": {"tiny": {"family": "gptj", "layers": 3, "hidden": 128, "intermediate": 512}},
                   "gqa": {"path": str(tmp_path / "gqa"), "family": "llama", "layers": 2},
                   "roberta": {"hub": "roberta-base", "revision": "main", "family": "roberta", "layers": 12},
                   "later": {"hub": "someone/model", "revision": "main", "family": "llama", "layers": 2},
                   "tiny-llama": {"tiny": {"family": "llama", "layers": 3}}},
        "cells": {"tiny-gptj": ["counterfact"], "gqa": ["counterfact"], "roberta": ["counterfact"],
                  "later": ["counterfact"]},
        "sweep": {"taus": ["fc_in", "v_proj"], "layers": [0], "rates": [9.95, 9.5]},
    }, sort_keys=False))
    assert lf_config.main([str(REPO / "config.yaml"), str(overlay)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{REPO / 'config.yaml'} + {overlay}: ok"
    # int(128 · 0.005000000000000071) = int(64 · 0.005…) = 0; int(16 · 0.05) = 0; roberta-base's 768 keeps
    # int(3.84) = 3 and int(38.4) = 38.
    assert captured.err.splitlines() == [
        "laserflow: warning: tiny-gptj: rate9.95 keeps rank 0 of fc_in (512x128, from its tiny spec): its jobs "
        "write the zero matrix, as the original does",
        "laserflow: warning: tiny-gptj: rate9.95 keeps rank 0 of v_proj (128x128, from its tiny spec): its jobs "
        "write the zero matrix, as the original does",
        f"laserflow: warning: gqa: rate9.95 keeps rank 0 of fc_in (200x64, from {tmp_path / 'gqa'}): its jobs "
        "write the zero matrix, as the original does",
        f"laserflow: warning: gqa: rate9.5 keeps rank 0 of v_proj (16x64, from {tmp_path / 'gqa'}): its jobs "
        "write the zero matrix, as the original does",
        f"laserflow: warning: gqa: rate9.95 keeps rank 0 of v_proj (16x64, from {tmp_path / 'gqa'}): its jobs "
        "write the zero matrix, as the original does",
        "laserflow: note: later: matrix shapes unknown before its jobs run: someone/model is not a known checkpoint "
        "and resources/models/later has no snapshot yet; a level that keeps rank 0 shows in its job's log",
    ]


def test_composition_and_analysis_request_the_model_plus_what_they_hold(tmp_path):
    from laserflow import resources

    config = lf_config.load_config(REPO / "configs" / "paper.yaml")
    factors = []
    for layer, size in ((27, 335_000_000), (26, 335_000_000)):  # GPT-J fc_in factors: (16384 + 4096) × 4096 floats
        factors.append(tmp_path / f"{layer}.pt")
        with open(factors[-1], "wb") as handle:
            handle.truncate(size)
    # 12.1 GB of weights + 0.67 GB of factors, +10% and 3 GB (17.1 GB), in 1 GB steps; unmade files count nothing.
    assert resources.compose_mem_mb(config, "gptj", factors) == 18000
    assert resources.compose_mem_mb(config, "gptj", [tmp_path / "missing.pt"]) == 17000
    # The largest factors file (0.34 GB: 16.7 GB in all) and 65,757 float32 hidden states of 4,096
    # (1.08 GB: 17.9 GB in all).
    (tmp_path / "config.json").write_text('{"n_embd": 4096}')
    assert resources.analysis_mem_mb(config, "gptj", tmp_path, tmp_path / "items.jsonl", factors) == 17000
    (tmp_path / "items.jsonl").write_text("{}\n" * 65757)
    assert resources.analysis_mem_mb(config, "gptj", tmp_path, tmp_path / "items.jsonl", factors) == 18000


@pytest.mark.parametrize(
    "argument, message",
    [
        ("missing.yaml", "{}: no such file"),
        ("folder", "{}: a directory, not a config file"),
        ("latin1.yaml", "{}: not UTF-8 text (byte 0xe9 at offset 34)"),
        ("-", "-: a config is read from a file, not from standard input; name the file"),
    ],
)
def test_config_check_of_an_unreadable_file_is_one_line(tmp_path, capsys, argument, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.yaml").write_bytes(b"models: {tiny: {tiny: {family: caf\xe9}}}\n")
    path = argument if argument == "-" else str(tmp_path / argument)
    assert lf_config.main([path]) == 1
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (f"laserflow: error: {message.format(path)}\n", "")


def test_config_check_without_a_file_prints_its_usage(capsys):
    assert lf_config.main([]) == 2
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == ("usage: python -m laserflow.config CONFIG [CONFIG ...]\n", "")


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

