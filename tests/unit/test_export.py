"""Export: the dense directory loads with transformers alone and equals the edited model bit for
bit, the factorized one equals it within float tolerance, the model card, and bad input."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import pytest
import torch

from laserflow import export as lf_export
from laserflow.edits import Edit, Level
from laserflow.evaluate import run_configuration
from laserflow.export import ExportOptions, ExportPaths, FactorizedLinear, export_model, load
from laserflow.io import LaserflowError, read_json, write_jsonl
from laserflow.laser import apply_edits
from laserflow.manifest import write_manifest
from laserflow.models import load_model
from laserflow.paths import EXPORT_RECORD
from laserflow.scoring import score_items
from laserflow.selection import select_files
from laserflow.settings import EvaluationPaths, EvaluationSettings, ScoringOptions, SvdSettings
from laserflow.svd import compute_svd, load_svd_cache

ALL_ARCHITECTURES = ["gptj", "llama", "roberta", "phi", "gpt2", "gpt_neox", "phi3", "qwen2", "gemma", "gemma2"]


def settings_for(model: str) -> EvaluationSettings:
    return EvaluationSettings(model, "counterfact", scoring=ScoringOptions(batch_size=8, show_progress=False),
                              svd=SvdSettings(), model_source={"tiny": {"family": model, "layers": 3}})


def logits_of(model, tokenizer, texts):
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        return model(**batch).logits[batch.attention_mask.bool()]


@pytest.fixture(scope="module")
def cell(tmp_path_factory, tiny_models, demo_items):
    """A GPT-J cell run the workflow's way on 30 items: the base, two LASER configurations from
    cached SVDs, the selection; and the export of the selected configuration."""
    root = tmp_path_factory.mktemp("cell")
    model_dir = str(tiny_models["gptj"])
    write_jsonl(root / "data.jsonl", demo_items[:30])
    write_manifest(model_dir, root / "manifest.json")
    settings = settings_for("gptj")
    runs = []
    for edit in [None, Edit("laser", "fc_in", 2, Level(rate=9.0)), Edit("laser", "fc_out", 1, Level(rate=8.0))]:
        svd = ()
        if edit:
            svd = (str(root / f"svd-{edit.tau}-{edit.layer}.pt"),)
            compute_svd(model_dir, edit.tau, edit.layer, svd[0])
        name = "base" if edit is None else f"{edit.tau}-{edit.layer}"
        run_configuration(settings, [edit] if edit else [], EvaluationPaths(
            model_dir, str(root / "data.jsonl"), str(root / f"{name}.json"), str(root / f"{name}.items.jsonl.gz"),
            str(root / "manifest.json"), svd))
        runs.append(str(root / f"{name}.json"))
    select_files(runs[0], runs[1:], str(root / "selection.json"))
    paths = ExportPaths(model_dir, str(root / "manifest.json"), str(root / "data.jsonl"), runs[0],
                        str(root / "export" / "gptj" / "counterfact"), str(root / "selection.json"),
                        svd=(str(root / "svd-fc_in-2.pt"), str(root / "svd-fc_out-1.pt")))
    record = export_model(settings, ExportOptions(verify_items=30), paths)
    return {"root": root, "paths": paths, "record": record, "selection": read_json(root / "selection.json"),
            "items": demo_items[:30]}


def edited_model(cell):
    """The in-memory model the selection chose: loaded and edited as the evaluation job does."""
    chosen = cell["selection"]["chosen"]
    model, tokenizer, family = load_model(cell["paths"].model)
    apply_edits(model, family, [Edit("laser", chosen["tau"], chosen["layer"], Level(rate=chosen["rate"]))],
                load_svd_cache(cell["paths"].svd))
    return model, tokenizer, family


def test_the_dense_export_is_a_transformers_model_equal_to_the_edited_one_bit_for_bit(cell):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = cell["paths"].out
    model, tokenizer, family = edited_model(cell)
    exported = AutoModelForCausalLM.from_pretrained(f"{out}/dense")
    exported_tokenizer = AutoTokenizer.from_pretrained(f"{out}/dense")
    assert sorted(path.name for path in (cell["root"] / "export/gptj/counterfact/dense").iterdir()) == [
        "README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json"]
    texts = [item["question"] for item in cell["items"]]
    assert exported_tokenizer(texts).input_ids == tokenizer(texts).input_ids
    assert torch.equal(logits_of(exported, tokenizer, texts), logits_of(model, tokenizer, texts))
    options = ScoringOptions(batch_size=8, show_progress=False)
    assert score_items(exported, tokenizer, family, cell["items"], options) == score_items(
        model, tokenizer, family, cell["items"], options)
    # The selection chose among real runs; the export's own check agreed.
    assert cell["record"]["verification"]["dense"]["equal"] is True
    assert cell["record"]["edits"][0]["tau"] == cell["selection"]["chosen"]["tau"]


def test_the_dense_export_loads_where_laserflow_is_not_installed(cell, tmp_path):
    program = f"""
import sys
class NoLaserflow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "laserflow":
            raise ImportError("laserflow is not installed")
sys.meta_path.insert(0, NoLaserflow())
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained({cell['paths'].out + '/dense'!r})
tokenizer = AutoTokenizer.from_pretrained({cell['paths'].out + '/dense'!r})
tokenizer.pad_token = tokenizer.eos_token
batch = tokenizer({[item["question"] for item in cell["items"]]!r}, padding=True, return_tensors="pt")
with torch.inference_mode():
    torch.save(model(**batch).logits[batch.attention_mask.bool()], {str(tmp_path / "logits.pt")!r})
assert "laserflow" not in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    model, tokenizer, _ = edited_model(cell)
    expected = logits_of(model, tokenizer, [item["question"] for item in cell["items"]])
    assert torch.equal(torch.load(tmp_path / "logits.pt"), expected)


def test_the_factorized_export_stores_two_rank_r_factors_and_loads_both_ways(cell):
    out = cell["paths"].out
    chosen = cell["selection"]["chosen"]
    model, tokenizer, family = edited_model(cell)
    (name,) = family.parameter_names(chosen["tau"], chosen["layer"])
    rank = Level(rate=chosen["rate"]).kept_rank(tuple(model.get_parameter(name).shape))
    low_rank = load(out, mode="low_rank")
    layer = low_rank.get_submodule(name.removesuffix(".weight"))
    assert isinstance(layer, FactorizedLinear)
    first, second = layer.pieces[0]
    assert (tuple(first.weight.shape), tuple(second.weight.shape)) == ((rank, model.get_parameter(name).shape[1]),
                                                                       (model.get_parameter(name).shape[0], rank))
    rebuilt = load(out)  # the directory holds both: dense/ is read
    rebuilt_from_factors = load(f"{out}/factorized")
    dense = dict(rebuilt.named_parameters())
    for other, param in rebuilt_from_factors.named_parameters():
        if other == name:
            torch.testing.assert_close(param, dense[other], rtol=0, atol=1e-6)
        else:
            assert torch.equal(param, dense[other]), other
    texts = [item["question"] for item in cell["items"]]
    expected = torch.log_softmax(logits_of(rebuilt, tokenizer, texts), -1)
    for candidate in (low_rank, rebuilt_from_factors):
        torch.testing.assert_close(torch.log_softmax(logits_of(candidate, tokenizer, texts), -1), expected,
                                   rtol=0, atol=1e-4)
    sizes = cell["record"]["weight_bytes"]
    matrices = cell["record"]["factorized_matrices"]
    # The edited matrix takes r·(m + n) instead of m·n values (float32).
    m, n = model.get_parameter(name).shape
    assert matrices == {"dense_bytes": 4 * m * n, "factor_bytes": 4 * rank * (m + n)}
    assert sizes["dense"] - sizes["factorized"] == pytest.approx(4 * m * n - 4 * rank * (m + n), abs=2048)


def test_the_model_card_names_the_source_the_edit_and_the_numbers_that_chose_it(cell):
    from laserflow.evaluate import software_versions

    card = (cell["root"] / "export/gptj/counterfact/README.md").read_text()
    assert card == (cell["root"] / "export/gptj/counterfact/dense/README.md").read_text()
    selection, record = cell["selection"], cell["record"]
    manifest = read_json(cell["paths"].manifest)["files"]
    assert f"| `model.safetensors` sha256 | `{manifest['model.safetensors']}` |" in card
    chosen = selection["chosen"]
    assert f"| 1 | {chosen['tau']} | {chosen['layer']} | {chosen['rho']:g} | {chosen['rate']:g} |" in card
    val, test = selection["laser"]["val"], selection["laser"]["test"]
    assert f"| LASER | {val['acc']:.2f} | {val['logloss']:.4f} | {test['acc']:.2f} | {test['logloss']:.4f} |" in card
    base = selection["base"]
    assert f"| base | {base['val']['acc']:.2f} | {base['val']['logloss']:.4f} |" in card
    assert f"Chosen among 2 LASER configurations on the validation part (the first 6 of 30 items)" in card
    software = software_versions()
    assert f"Exported by laserflow {software['laserflow']} (commit `{software['laserflow_commit']}`)." in card
    assert f'model = AutoModelForCausalLM.from_pretrained("{cell["paths"].out}/dense")' in card
    assert record["numbers"]["files"] == selection["files"]
    assert read_json(cell["root"] / "export/gptj/counterfact" / EXPORT_RECORD) == json.loads(json.dumps(record))


def export_edits(tiny_models, tmp_path, demo_items, architecture, edits, out=None, items=8, formats=("dense", "factorized")):
    """Export an explicit edit list of a tiny model (SVDs computed in the job) on a few items."""
    model_dir = str(tiny_models[architecture])
    write_jsonl(tmp_path / "data.jsonl", demo_items[:items])
    write_manifest(model_dir, tmp_path / "manifest.json")
    (tmp_path / "base.json").write_text(json.dumps({"n_items": items, "n_val": 1, "metrics": {
        part: {"acc": 50.0, "logloss": 2.0} for part in ("val", "test")}}))
    paths = ExportPaths(model_dir, str(tmp_path / "manifest.json"), str(tmp_path / "data.jsonl"),
                        str(tmp_path / "base.json"), str(out or tmp_path / "export"))
    return export_model(settings_for(architecture), ExportOptions(tuple(formats), items, tuple(edits)), paths)


@pytest.mark.parametrize("architecture", ALL_ARCHITECTURES)
def test_every_architecture_exports_in_both_formats(tiny_models, demo_items, tmp_path, architecture):
    record = export_edits(tiny_models, tmp_path, demo_items, architecture,
                          [{"tau": "fc_in", "layer": 1, "rate": 9}, {"tau": "out_proj", "layer": 2, "rho": 0.5}])
    verification = record["verification"]
    assert verification["dense"]["equal"] is True
    assert verification["factorized"]["max_abs_logprob_diff"] < 1e-4
    assert verification["factorized"]["top1_agreement"] == 1.0
    assert record["weight_bytes"]["factorized"] < record["weight_bytes"]["dense"]
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["README.md", "dense", "factorized",
                                                                            EXPORT_RECORD]


def test_fused_halves_and_a_composite_export_rebuild_exactly_the_edited_model(tiny_models, demo_items, tmp_path):
    edits = [{"tau": "fc_gate", "layer": 1, "rate": 9}, {"tau": "k_proj", "layer": 0, "rho": 0.5},
             {"tau": "fc_out", "layer": 2, "rate": 8}]
    export_edits(tiny_models, tmp_path, demo_items, "phi3", edits)
    model, tokenizer, family = load_model(tiny_models["phi3"])
    source = {name: param.detach().clone() for name, param in model.named_parameters()}
    apply_edits(model, family, [Edit("laser", e["tau"], e["layer"], Level(**{k: e[k] for k in ("rate", "rho") if k in e}))
                                for e in edits])
    dense = load(tmp_path / "export")
    assert all(torch.equal(param, model.get_parameter(name)) for name, param in dense.named_parameters())
    rebuilt = load(tmp_path / "export" / "factorized")
    gate_up = "model.layers.1.mlp.gate_up_proj.weight"
    # The up half was not edited: stored dense, it comes back bit for bit; the gate half (256 × 128) has
    # rank int(128 · 0.1) = 12.
    assert torch.equal(rebuilt.get_parameter(gate_up)[256:], source[gate_up][256:])
    assert torch.linalg.matrix_rank(rebuilt.get_parameter(gate_up)[:256]).item() == 12
    torch.testing.assert_close(rebuilt.get_parameter(gate_up), model.get_parameter(gate_up), rtol=0, atol=1e-6)
    low_rank = load(tmp_path / "export", mode="low_rank")
    layer = low_rank.model.layers[1].mlp.gate_up_proj
    assert isinstance(layer, FactorizedLinear) and layer.spans == [((0, 256),), ((256, 512),)]
    texts = [item["question"] for item in demo_items[:8]]
    torch.testing.assert_close(torch.log_softmax(logits_of(low_rank, tokenizer, texts), -1),
                               torch.log_softmax(logits_of(model, tokenizer, texts), -1), rtol=0, atol=1e-4)
    card = (tmp_path / "export" / "README.md").read_text()
    assert "| 1 | fc_gate | 1 | 0.1 | 9 | `model.layers.1.mlp.gate_up_proj.weight[gate]` (256 × 128): 12 of 128 |" in card
    assert "laserflow evaluates single edits only, so the edited model's numbers are not available" in card


@pytest.mark.parametrize("edits, message", [
    ([{"tau": "fc_gate", "layer": 1, "rate": 9}],
     "matrix type 'fc_gate' is not defined for the gptj family; valid: k_proj, q_proj, v_proj, out_proj, fc_in, "
     "fc_out, attn, mlp, all"),
    ([{"tau": "fc_in", "layer": 1, "rate": 9}, {"tau": "fc_out", "layer": 7, "rate": 9}],
     "layer 7 is outside the model's layers 0..2"),
    ([{"tau": "mlp", "layer": 1, "rate": 9}, {"tau": "fc_out", "layer": 1, "rate": 2}],
     "export: edits (mlp, layer 1) and (fc_out, layer 1) both change transformer.h.1.mlp.fc_out.weight; "
     "list each matrix once"),
])
def test_an_edit_the_model_lacks_is_one_line_and_writes_nothing(tiny_models, demo_items, tmp_path, edits, message):
    with pytest.raises(LaserflowError) as err:
        export_edits(tiny_models, tmp_path, demo_items, "gptj", edits)
    assert str(err.value) == message
    assert not (tmp_path / "export").exists() and not list(tmp_path.glob(".export.*"))


def test_overlapping_fused_parts_are_refused(tiny_models, demo_items, tmp_path):
    with pytest.raises(LaserflowError) as err:
        export_edits(tiny_models, tmp_path, demo_items, "phi3",
                     [{"tau": "fc_up", "layer": 1, "rate": 9}, {"tau": "fc_in", "layer": 1, "rate": 9}])
    assert str(err.value) == ("export: edits (fc_up, layer 1) and (fc_in, layer 1) both change "
                              "model.layers.1.mlp.gate_up_proj.weight; list each matrix once")


def test_a_target_with_other_contents_is_left_alone_and_an_earlier_export_is_replaced(tiny_models, demo_items,
                                                                                      tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("my own files")
    with pytest.raises(LaserflowError) as err:
        export_edits(tiny_models, tmp_path, demo_items, "gpt2", [{"tau": "fc_in", "layer": 1, "rate": 9}], out=target)
    assert str(err.value) == (f"{target}: exists and is not a laserflow output; move it away or delete it "
                              "(nothing was written)")
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
    first = export_edits(tiny_models, tmp_path, demo_items, "gpt2", [{"tau": "fc_in", "layer": 1, "rate": 9}])
    second = export_edits(tiny_models, tmp_path, demo_items, "gpt2", [{"tau": "fc_out", "layer": 1, "rate": 9}])
    assert first["edits"][0]["tau"] == "fc_in" and read_json(tmp_path / "export" / EXPORT_RECORD) == second


def test_a_write_that_fails_midway_leaves_no_directory(tiny_models, demo_items, tmp_path):
    """A real failed write: files are capped at 200 kB, so the weights cannot be written."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, limits[1]))
    try:
        with pytest.raises(LaserflowError) as err:
            export_edits(tiny_models, tmp_path, demo_items, "gpt2", [{"tau": "fc_in", "layer": 1, "rate": 9}])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert str(err.value) == (f"{tmp_path / 'export'}: could not write the export: File too large (os error 27); "
                              "nothing was written")
    assert sorted(path.name for path in tmp_path.iterdir()) == [".manifest.stat.json", "base.json", "data.jsonl",
                                                                "manifest.json"]


def test_a_disk_that_fills_is_one_line_and_leaves_no_directory(tiny_models, demo_items, tmp_path, monkeypatch):
    def full_disk(path, text):
        path.write_text(text[:100])
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(lf_export, "write_text", full_disk)  # the model card, written last
    with pytest.raises(LaserflowError) as err:
        export_edits(tiny_models, tmp_path, demo_items, "gpt2", [{"tau": "fc_in", "layer": 1, "rate": 9}])
    assert str(err.value) == f"{tmp_path / 'export'}: the disk is full (No space left on device); free space and rerun"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".manifest.stat.json", "base.json", "data.jsonl",
                                                                "manifest.json"]


def test_the_export_gets_the_permissions_of_files_created_now(cell):
    """Not the private ones of its temporary directory and of safetensors' writes."""
    import stat

    mask = os.umask(0)
    os.umask(mask)
    out = cell["root"] / "export/gptj/counterfact"
    assert {stat.S_IMODE(path.stat().st_mode) for path in [out, *out.rglob("*")] if path.is_dir()} == {0o777 & ~mask}
    assert {stat.S_IMODE(path.stat().st_mode) for path in out.rglob("*") if path.is_file()} == {0o666 & ~mask}


def test_load_refuses_a_dense_directory_in_low_rank_mode(cell):
    with pytest.raises(LaserflowError, match="dense: not a factorized export"):
        load(f"{cell['paths'].out}/dense", mode="low_rank")
