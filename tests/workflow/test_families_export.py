"""End to end: every family's tiny model (today's architectures included) runs a base and a LASER
configuration through the workflow, and `snakemake export/{model}/{dataset}` exports one model per
family in both formats, equal to the edited model."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from laserflow.edits import Edit, Level
from laserflow.export import FactorizedLinear, load
from laserflow.io import read_json, read_jsonl
from laserflow.laser import apply_edits
from laserflow.models import load_model
from laserflow.svd import load_svd_cache

# Model name -> tiny architecture: one model of each family, and the llama family's other layouts.
MODELS = {"gptj": "gptj", "llama": "llama", "roberta": "roberta", "phi": "phi", "gpt2": "gpt2",
          "pythia": "gpt_neox", "phi3": "phi3", "qwen2": "qwen2", "gemma": "gemma", "gemma2": "gemma2"}
# The selected configuration of one model per family; Phi-3 a composite with a fused half, Gemma-2
# one configured edit (evaluated for its numbers).
EXPORTED = ["gptj", "llama", "roberta", "phi", "gpt2", "pythia", "phi3", "gemma2"]
EXPORT_EDITS = {"phi3": {"counterfact": [{"tau": "fc_gate", "layer": 1, "rate": 9}, {"tau": "k_proj", "layer": 0, "rho": 0.5}]},
                "gemma2": {"counterfact": [{"tau": "fc_up", "layer": 0, "rate": 8}]}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, demo_counterfact, snakemake):
    workdir = tmp_path_factory.mktemp("families")
    (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:10]))
    config = {
        "models": {name: {"tiny": {"family": architecture, "layers": 2, "hidden": 64, "heads": 4,
                                   "intermediate": 128, "seed": 1}} for name, architecture in MODELS.items()},
        "datasets": {"counterfact": {"local": "counterfact.json"}},
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": [9]},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
        "export": {"verify_items": 30, "edits": EXPORT_EDITS},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "all", *[f"export/{model}/counterfact" for model in EXPORTED])
    return workdir


def edited(workdir, model, edits):
    """The model as the evaluation jobs edit it: loaded, then truncated from the cached SVDs."""
    loaded, tokenizer, family = load_model(workdir / f"resources/models/{model}")
    cache = load_svd_cache([workdir / f"resources/svd/{model}/{edit.tau}/{edit.layer}.pt" for edit in edits])
    apply_edits(loaded, family, edits, cache)
    return loaded, tokenizer


def logits_of(model, tokenizer, texts):
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        return model(**batch).logits[batch.attention_mask.bool()]


def test_every_architecture_runs_a_base_and_a_laser_configuration(workdir):
    for model, architecture in MODELS.items():
        base = read_json(workdir / f"results/{model}/counterfact/base.json")
        run = read_json(workdir / f"results/{model}/counterfact/runs/laser/fc_in/1/rate9.json")
        selection = read_json(workdir / f"results/{model}/counterfact/selection.json")
        assert base["family"] == {"gpt_neox": "gpt_neox", "qwen2": "llama", "gemma": "llama",
                                  "gemma2": "llama"}.get(architecture, architecture)
        assert base["n_items"] == run["n_items"] == 30 and run["edits"][0]["tau"] == "fc_in"
        assert selection["chosen"] == run["edits"][0]


@pytest.mark.parametrize("model", EXPORTED)
def test_each_export_equals_the_edited_model(workdir, model):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    out = workdir / f"export/{model}/counterfact"
    record = read_json(out / "laserflow_export.json")
    edits = [Edit("laser", edit["tau"], edit["layer"],
                  Level(rate=edit["rate"]) if "rate" in edit else Level(rho=edit["rho"])) for edit in record["edits"]]
    if model in EXPORT_EDITS:
        assert [(edit.tau, edit.layer) for edit in edits] == [
            (entry["tau"], entry["layer"]) for entry in EXPORT_EDITS[model]["counterfact"]]
    else:
        assert record["edits"][0]["tau"] == read_json(workdir / f"results/{model}/counterfact/selection.json")[
            "chosen"]["tau"]
    reference, tokenizer = edited(workdir, model, edits)
    texts = [item["question"] for item in read_jsonl(workdir / "resources/data/counterfact.jsonl")]
    auto = AutoModelForMaskedLM if model == "roberta" else AutoModelForCausalLM
    expected = logits_of(reference, tokenizer, texts)
    assert torch.equal(logits_of(auto.from_pretrained(out / "dense"), tokenizer, texts), expected)
    low_rank = load(out, mode="low_rank")
    assert any(isinstance(module, FactorizedLinear) for module in low_rank.modules())
    torch.testing.assert_close(torch.log_softmax(logits_of(low_rank, tokenizer, texts), -1),
                               torch.log_softmax(expected, -1), rtol=0, atol=1e-4)
    assert record["verification"]["dense"]["equal"] is True and record["verification"]["items"] == 30


def test_the_cards_give_the_numbers_that_chose_each_export(workdir):
    # The search scored the validation part; the chosen configuration's own job, every item.
    selected = read_json(workdir / "results/gpt2/counterfact/selection.json")
    chosen = read_json(workdir / "results/gpt2/counterfact/chosen.json")
    assert "test" not in selected["laser"] and chosen["metrics"]["val"] == selected["laser"]["val"]
    card = (workdir / "export/gpt2/counterfact/README.md").read_text()
    val, test = chosen["metrics"]["val"], chosen["metrics"]["test"]
    assert f"| LASER | {val['acc']:.2f} | {val['logloss']:.4f} | {test['acc']:.2f} | {test['logloss']:.4f} |" in card
    # One configured edit: laserflow evaluated it on the validation part, so those numbers are on the card.
    run = read_json(workdir / "results/gemma2/counterfact/runs/laser/fc_up/0/rate8.json")
    card = (workdir / "export/gemma2/counterfact/README.md").read_text()
    assert "The edit list was given in the config (`export.edits`), not selected by laserflow." in card
    assert f"| LASER | {run['metrics']['val']['acc']:.2f} | {run['metrics']['val']['logloss']:.4f} | — | — |" in card
    card = (workdir / "export/phi3/counterfact/README.md").read_text()
    assert "`model.layers.1.mlp.gate_up_proj.weight[gate]` (128 × 64): 6 of 64" in card


def test_exports_are_asked_for_by_name_and_then_up_to_date(workdir, snakemake):
    assert "Nothing to be done" in snakemake(workdir, "-n").output
    assert "Nothing to be done" in snakemake(workdir, "-n", "export/gpt2/counterfact").output
    assert not (workdir / "export/qwen2").exists()


def test_a_target_with_other_contents_stops_the_run_in_one_line_and_survives(workdir, snakemake):
    target = workdir / "export/qwen2/counterfact"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    result = snakemake(workdir, "export/qwen2/counterfact", check=False)
    assert result.returncode != 0
    assert ("laserflow: error: export/qwen2/counterfact: exists and is not a laserflow output; move it away or "
            "delete it (nothing was written)") in result.output
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
