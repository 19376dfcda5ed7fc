"""Search cost without changed numbers: layer groups replay the layers below the edit, batches
never mix the validation and test parts, the grid's layer groups, cost accounting, and the
chosen configuration's test numbers in the report."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from laserflow import cost, paths, sweep
from laserflow.config import validate
from laserflow.edits import Edit, Level
from laserflow.forward import WeightStates, run_batched
from laserflow.io import LaserflowError
from laserflow.laser import apply_edits, edited_parameters
from laserflow.models import load_model
from laserflow.records import read_selections
from laserflow.scoring import score_items, score_states
from laserflow.settings import ScoringOptions

OPTIONS = ScoringOptions(batch_size=4, show_progress=False)
EDITS = [[Edit("laser", tau, 1, Level(rate=rate))] for tau in ("fc_in", "fc_out") for rate in (9.9, 2)]


@pytest.mark.parametrize("family, dataset", [("gptj", "counterfact"), ("llama", "fever"), ("roberta", "fever"),
                                             ("llama", "hotpotqa"), ("gptj", "bigbench_epistemic")])
def test_a_layer_group_scores_each_configuration_as_its_own_full_forward_pass(
        tiny_models, demo_items, sample_items, family, dataset):
    items = demo_items[:10] if dataset == "counterfact" else sample_items[dataset]
    model, tokenizer, detected = load_model(tiny_models[family])
    states = [edited_parameters(model, detected, edits) for edits in EDITS]
    weights = WeightStates(model, detected, states, shared=1)
    group = score_states(weights, tokenizer, detected, items, OPTIONS, dataset, n_val=2)
    for edits, records in zip(EDITS, group):
        alone, _, _ = load_model(tiny_models[family])
        apply_edits(alone, detected, edits)
        # Bit for bit: the same records as a plain forward pass of the edited model.
        assert records == score_items(alone, tokenizer, detected, items, OPTIONS, dataset, n_val=2)
    assert all(param.data_ptr() == weights.originals[name].data_ptr() for name, param in weights.params.items())


def test_batches_never_mix_parts_so_validation_numbers_do_not_depend_on_the_test_part(tiny_models, demo_items):
    model, tokenizer, detected = load_model(tiny_models["gptj"])
    items = demo_items[:30]
    full = score_items(model, tokenizer, detected, items, OPTIONS, "counterfact", n_val=7)
    assert score_items(model, tokenizer, detected, items[:7], OPTIONS, "counterfact", n_val=7) == full[:7]


def test_each_part_runs_in_as_few_equal_batches_as_fit_longest_first():
    lengths = [5, 9, 7] + list(range(100, 166)) + [1, 3]  # validation: the first three items
    parts = [0] * 3 + [1] * 66 + [0] * 2
    batches = []
    out = run_batched(list(range(71)), lengths, parts, 64, lambda batch: batches.append(batch) or batch, False, "")
    assert out == list(range(71))
    assert batches == [[1, 2, 0, 70, 69], list(range(68, 35, -1)), list(range(35, 2, -1))]  # 5; 66 = 33 + 33


def test_an_out_of_memory_batch_is_halved_and_the_rest_split_again():
    sizes = []

    def step(batch):
        sizes.append(len(batch))
        if len(batch) > 20:
            raise torch.OutOfMemoryError("test")
        return batch

    assert run_batched(list(range(50)), [1] * 50, [0] * 50, 64, step, False, "") == list(range(50))
    assert sizes == [50, 25, 13, 13, 12, 12]  # 64 holds 50; at 32: two of 25; at 16: four of 12 or 13


def test_work_counts_layer_token_passes_the_shared_layers_split_over_the_states(tiny_models, sample_items):
    model, tokenizer, detected = load_model(tiny_models["llama"])  # 3 layers
    items = sample_items["fever"]  # one row per item, four items: one batch
    tokens = max(len(ids) for ids in tokenizer([f"Consider the following claim: {item['question'].strip()}" for item in items]).input_ids)
    states = [edited_parameters(model, detected, edits) for edits in EDITS]
    alone = WeightStates(model, detected, [{}])
    score_states(alone, tokenizer, detected, items, OPTIONS, "fever")
    grouped = WeightStates(model, detected, states, shared=1)
    score_states(grouped, tokenizer, detected, items, OPTIONS, "fever")
    batch_tokens = alone.work[0] / 3
    assert batch_tokens >= 4 * tokens  # the padded batch: four rows at least as long as the claim part
    assert grouped.work == [batch_tokens * (2 + 1 / 4)] * 4  # layers 1, 2 each; layer 0 shared by four


def test_composite_edits_compose_in_order_without_touching_the_model(tiny_models):
    model, _, detected = load_model(tiny_models["gptj"])
    edits = [Edit("laser", "fc_in", 1, Level(rate=2)), Edit("prune", "fc_in", 1, Level(rate=5))]
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    values = edited_parameters(model, detected, edits)
    assert all(param.equal(before[name]) for name, param in model.named_parameters())
    apply_edits(model, detected, edits)
    (name,) = values
    assert dict(model.named_parameters())[name].detach().equal(values[name])


DEMO = yaml.safe_load(open(paths.__file__.replace("src/laserflow/paths.py", "config.yaml")))


def demo(**sweep_keys) -> dict:
    config = copy.deepcopy(DEMO)
    config["sweep"] |= sweep_keys
    validate(config)
    return config


def test_the_grid_runs_as_layer_groups_of_the_original_sweep_order():
    config = demo(taus=["fc_in", "fc_out"], rates=[2, 9.9])
    assert (config["sweep"]["score"], config["sweep"]["group"]) == ("validation", "layer")
    keys = sweep.layer_keys(config)
    assert [(i, t, level.label) for i, t, level in keys] == [
        ("laser", "fc_in", "rate9.9"), ("laser", "fc_in", "rate2"), ("laser", "fc_out", "rate9.9"),
        ("laser", "fc_out", "rate2")]
    edits = sweep.edits(config, "tiny-gptj", "fever")
    assert [(edit.layer, edit.tau, edit.level.label) for edit in edits[:5]] == [
        (2, "fc_in", "rate9.9"), (2, "fc_in", "rate2"), (2, "fc_out", "rate9.9"), (2, "fc_out", "rate2"),
        (1, "fc_in", "rate9.9")]
    assert paths.group_files(paths.RUN, keys[:2]) == [
        "results/{cell}/runs/laser/fc_in/{layer}/rate9.9.json", "results/{cell}/runs/laser/fc_in/{layer}/rate2.json"]
    assert (sweep.part(config, "tiny-gptj", "fever"), sweep.grouped(config, "tiny-gptj", "fever")) == ("validation", True)
    # A cell that lists its configurations (artifact evaluation) scores them on every item, one job each.
    config["selected"] = {"tiny-gptj": {"fever": [{"tau": "fc_in", "layer": 1, "rate": 9}]}}
    assert (sweep.part(config, "tiny-gptj", "fever"), sweep.grouped(config, "tiny-gptj", "fever")) == ("all", False)
    assert sweep.part(demo(score="all"), "tiny-gptj", "fever") == "all"
    assert not sweep.grouped(demo(group="configuration"), "tiny-gptj", "fever")


def hub_cell(config: dict, dataset: str, hub: str) -> cost.CellCost:
    """The cost of tiny-gptj on one hub dataset of the catalog's size (run where nothing is
    downloaded or processed)."""
    config["datasets"] = {dataset: {"hub": hub, "revision": "main"}}
    config["models"] = {"tiny-gptj": config["models"]["tiny-gptj"]}
    config["cells"] = {"tiny-gptj": [dataset]}
    for block in ("robustness", "compose", "analysis"):
        config.pop(block)
    validate(config)
    return cost.cell_cost(config, "tiny-gptj", dataset)


def test_the_cost_of_a_search_in_both_modes_from_known_sizes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no processed datasets here: the catalog's sizes
    config = demo(taus=["fc_in", "fc_out"], layers="all", rates=[2, 9.9])
    cell = hub_cell(config, "fever", "EleutherAI/fever")
    per_pass = 13_086 * cost.TYPICAL_TOKENS["fever"] * 2 * cost.model_parameters(config, "tiny-gptj")  # 3 layers
    n_val = 2617
    # One job per configuration: base + 12 configurations, every item, every layer.
    assert cell.each_flops == pytest.approx(13 * per_pass)
    # Layer groups of 4 on the validation part (layers 0, 1, 2 shared below), base and chosen on all.
    groups = sum(layer + 4 * (3 - layer) for layer in range(3)) / 3
    assert cell.grouped_flops == pytest.approx(2 * per_pass + n_val / 13_086 * groups * per_pass)
    assert (cell.configurations, cell.layer_groups, cell.search) == (12, 3, True)
    table = cost.report(config)
    assert table.splitlines()[1].split()[:4] == ["tiny-gptj", "fever", "13", "5"]


@pytest.mark.parametrize("shared_prompt, prompts", [(True, 1), (False, 2)])
def test_the_cost_of_choice_items_counts_their_prompt_once_when_it_is_shared(monkeypatch, tmp_path, shared_prompt,
                                                                               prompts):
    monkeypatch.chdir(tmp_path)
    config = demo(taus=["fc_in"], layers="all", rates=[2], score="all", group="configuration")
    config["evaluation"]["shared_prompt"] = shared_prompt
    cell = hub_cell(config, "bigbench_epistemic", "tasksource/bigbench")
    # "entailment" one word, "non-entailment" two: 3 × 1.3 tokens of choices after each prompt.
    tokens = prompts * cost.TYPICAL_TOKENS["bigbench_epistemic"] + 3 * cost.TOKENS_PER_WORD
    per_pass = 2_000 * tokens * 2 * cost.model_parameters(config, "tiny-gptj")
    assert cell.each_flops == cell.grouped_flops == pytest.approx(4 * per_pass)  # base + 3 layers


def selection(laser):
    return {"model": "m", "dataset": "d", "candidates": 2, "chosen": {"tau": "fc_in", "layer": 1, "rho": 0.1},
            "base": {"val": {"acc": 1.0, "logloss": 2.0}, "test": {"n": 8, "acc": 3.0, "logloss": 4.0}},
            "laser": laser, "files": {"base": "b.json", "chosen": "runs/r.json"}}


def test_the_report_takes_test_numbers_from_the_chosen_configurations_own_job(tmp_path):
    val = {"n": 2, "acc": 50.0, "logloss": 1.5}
    (tmp_path / "selection.json").write_text(json.dumps(selection({"val": val})))
    chosen = {"model": "m", "dataset": "d", "edits": [{"tau": "fc_in", "layer": 1, "rho": 0.1}],
              "metrics": {"val": val, "test": {"n": 8, "acc": 75.0, "logloss": 0.5}}}
    (tmp_path / "chosen.json").write_text(json.dumps(chosen))
    (record,) = read_selections([tmp_path / "selection.json"], [tmp_path / "chosen.json"])
    assert record["laser"]["test"] == {"n": 8, "acc": 75.0, "logloss": 0.5}
    assert record["files"]["chosen"] == str(tmp_path / "chosen.json")
    # A chosen file whose validation numbers are not the ones the selection saw is stale.
    (tmp_path / "chosen.json").write_text(json.dumps(chosen | {"metrics": {"val": val | {"acc": 49.0},
                                                                            "test": chosen["metrics"]["test"]}}))
    with pytest.raises(LaserflowError) as err:
        read_selections([tmp_path / "selection.json"], [tmp_path / "chosen.json"])
    assert str(err.value) == (f"{tmp_path / 'chosen.json'}: not the configuration {tmp_path / 'selection.json'} "
                              "chose, or not its validation numbers; rerun the workflow")
    with pytest.raises(LaserflowError, match="key 'laser.test.acc' is missing"):
        read_selections([tmp_path / "selection.json"])
