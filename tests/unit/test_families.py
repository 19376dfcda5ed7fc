"""Today's families: τ names against transformers' model code, fused parts edited alone, GPT-2's
Conv1D read as W (out × in), the scoring head and the label words per architecture."""

from __future__ import annotations

import logging

import pytest
import torch

from laserflow.edits import Edit, Level
from laserflow.families import detect_family
from laserflow.io import LaserflowError
from laserflow.laser import apply_edits, edited_weight, matrix_of, svd_factors, truncate
from laserflow.models import load_model
from laserflow.scoring import score_items
from laserflow.settings import ScoringOptions

# Architecture of each tiny model (tests/conftest.py) -> the family its model_type maps to.
ARCHITECTURES = {"gpt2": "gpt2", "gpt_neox": "gpt_neox", "phi3": "phi3", "qwen2": "llama", "gemma": "llama",
                 "gemma2": "llama"}


def layer_module(model, family, layer, suffix):
    return model.get_submodule(family.layer_prefix.format(layer=layer) + suffix.removesuffix(".weight"))


@pytest.mark.parametrize("architecture, family", ARCHITECTURES.items())
def test_single_taus_cover_every_weight_matrix_of_a_layer_as_out_by_in(tiny_models, architecture, family):
    model, _, detected = load_model(tiny_models[architecture])
    assert detected.name == family == detect_family(model.config).name
    prefix = detected.layer_prefix.format(layer=1)
    matrices = {name for name, param in model.named_parameters() if name.startswith(prefix) and param.ndim == 2}
    covered = {}
    for tau in detected.matrices:
        (target,) = detected.targets(tau, 1, model.config)
        covered[target.parameter] = target
    assert set(covered) == matrices
    for name, target in covered.items():
        module = model.get_submodule(name.removesuffix(".weight"))
        # W of y = W x: as many columns as the layer has inputs (Conv1D's nx, Linear's in_features).
        inputs = module.nx if architecture == "gpt2" else module.in_features
        outputs = module.nf if architecture == "gpt2" else module.out_features
        assert tuple(matrix_of(model.get_parameter(name), target).shape) == (outputs, inputs)


def test_model_types_map_to_their_families():
    assert [detect_family({"model_type": kind}).name for kind in ("gpt2", "gpt_neox", "phi3", "gemma", "gemma2",
                                                                   "qwen2", "llama")] == [
        "gpt2", "gpt_neox", "phi3", "llama", "llama", "llama", "llama"]
    with pytest.raises(LaserflowError, match="model_type='gemma3_text' is not mapped to a LASER family"):
        detect_family({"model_type": "gemma3_text"})


def test_fused_parts_have_the_rows_the_model_code_splits(tiny_models):
    """hidden 128, 4 heads of 32 (Phi-3 and Qwen2 with 2 key/value heads), intermediate 256."""
    spans = {}
    for architecture in ("gpt2", "gpt_neox", "phi3"):
        model, _, family = load_model(tiny_models[architecture])
        for tau in family.parts:
            (target,) = family.targets(tau, 0, model.config)
            spans[architecture, tau] = target.rows
    assert spans["gpt2", "q_proj"] == ((0, 128),) and spans["gpt2", "v_proj"] == ((256, 384),)
    # GPT-NeoX views the output as heads × (q, k, v) of 32 rows each.
    assert spans["gpt_neox", "k_proj"] == ((32, 64), (128, 160), (224, 256), (320, 352))
    # Phi-3: q of 4 × 32 rows, then k and v of 2 × 32 each; gate, then up, of 256 rows each.
    assert (spans["phi3", "q_proj"], spans["phi3", "k_proj"], spans["phi3", "v_proj"]) == (
        ((0, 128),), ((128, 192),), ((192, 256),))
    assert (spans["phi3", "fc_gate"], spans["phi3", "fc_up"]) == (((0, 256),), ((256, 512),))


@pytest.mark.parametrize("architecture", ["gpt2", "gpt_neox", "phi3"])
def test_zeroing_the_value_part_makes_attention_ignore_its_input(tiny_models, demo_items, architecture):
    """With v's rows of the fused matrix zero, every value is the bias (or zero): the attention
    output is the same at every position of every input. This holds only if the part is the rows
    the model uses as values."""
    model, tokenizer, family = load_model(tiny_models[architecture])
    apply_edits(model, family, [Edit("zero", "v_proj", 1, None)])
    attention = {"gpt2": "attn", "gpt_neox": "attention", "phi3": "self_attn"}[architecture]
    outputs = []
    hook = model.get_submodule(family.layer_prefix.format(layer=1) + attention).register_forward_hook(
        lambda module, args, output: outputs.append(output[0]))
    with torch.inference_mode():
        for item in demo_items[:2]:
            model(**tokenizer(item["question"], return_tensors="pt"))
    hook.remove()
    values = torch.cat([output[0] for output in outputs])
    torch.testing.assert_close(values, values[:1].expand_as(values), rtol=0, atol=1e-5)


def test_phi3_gate_and_up_halves_are_what_its_mlp_multiplies(tiny_models):
    model, _, family = load_model(tiny_models["phi3"])
    mlp = model.model.layers[1].mlp
    (gate,) = family.targets("fc_gate", 1, model.config)
    (up,) = family.targets("fc_up", 1, model.config)
    x = torch.randn(3, 128, generator=torch.Generator().manual_seed(0))
    weight = mlp.gate_up_proj.weight
    expected = mlp.down_proj(torch.nn.functional.silu(x @ matrix_of(weight, gate).T) * (x @ matrix_of(weight, up).T))
    with torch.inference_mode():
        torch.testing.assert_close(mlp(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("architecture, tau", [("phi3", "fc_gate"), ("phi3", "fc_up"), ("phi3", "k_proj"),
                                               ("gpt_neox", "q_proj"), ("gpt2", "v_proj")])
def test_a_part_edit_changes_only_its_rows_to_the_rank_of_its_own_shape(tiny_models, architecture, tau):
    model, _, family = load_model(tiny_models[architecture])
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    edit = Edit("laser", tau, 1, Level(rate=8.0))
    originals = apply_edits(model, family, [edit])
    (target,) = family.targets(tau, 1, model.config)
    assert list(originals) == [target.parameter]
    rows = torch.cat([torch.arange(start, stop) for start, stop in target.rows])
    whole = type(target)(target.parameter, transposed=target.transposed)
    after_matrix = matrix_of(model.get_parameter(target.parameter), whole)
    before_matrix = matrix_of(before[target.parameter], whole)
    part = after_matrix[rows]
    rank = edit.level.kept_rank(tuple(part.shape))  # int(min(rows of the part, in) · 0.2)
    assert rank == int(min(part.shape) * 0.2) and torch.linalg.matrix_rank(part).item() == rank
    torch.testing.assert_close(part, truncate(svd_factors(before_matrix[rows]), rank), rtol=0, atol=1e-5)
    others = torch.ones(after_matrix.shape[0], dtype=torch.bool)
    others[rows] = False
    assert torch.equal(after_matrix[others], before_matrix[others])
    for name, param in model.named_parameters():
        if name != target.parameter:
            assert torch.equal(param.detach(), before[name]), name


def test_laser_on_gpt2_is_laser_on_the_transposed_matrix(tiny_models, tmp_path, caplog):
    from laserflow.svd import compute_svd, load_svd_cache

    model, _, family = load_model(tiny_models["gpt2"])
    stored = model.transformer.h[1].mlp.c_fc.weight  # Conv1D: in × out = 128 × 256
    linear_layout = stored.detach().T.contiguous()  # W as a Linear stores it: out × in
    edit = Edit("laser", "fc_in", 1, Level(rate=9.0))
    expected = edited_weight(linear_layout, edit)  # rank int(min(256, 128) · 0.1) = 12
    apply_edits(model, family, [edit])
    assert torch.equal(stored.detach().T, expected)
    assert torch.linalg.matrix_rank(expected).item() == 12
    # The cached factors are W's (out × in), so the sweep's truncations use the same orientation.
    compute_svd(tiny_models["gpt2"], "fc_in", 1, tmp_path / "svd.pt")
    factors = load_svd_cache([tmp_path / "svd.pt"])["transformer.h.1.mlp.c_fc.weight"]
    assert (tuple(factors["U"].shape), tuple(factors["Vh"].shape)) == ((256, 128), (128, 128))
    # A level that keeps rank 0 writes the zero matrix, as the original does, and says so with the
    # matrix's out × in shape.
    with caplog.at_level(logging.WARNING, logger="laserflow.laser"):
        apply_edits(model, family, [Edit("laser", "fc_in", 1, Level(rho=0.005))])
    assert not stored.detach().any()
    assert caplog.messages == ["rho0.005 keeps rank 0 of transformer.h.1.mlp.c_fc.weight (256x128): writing the zero "
                               "matrix, as the original does"]


def test_a_cached_part_svd_is_keyed_by_its_part(tiny_models, tmp_path):
    from laserflow.svd import compute_svd, load_svd_cache

    for tau in ("fc_gate", "fc_up"):
        compute_svd(tiny_models["phi3"], tau, 2, tmp_path / f"{tau}.pt")
    cache = load_svd_cache([tmp_path / "fc_gate.pt", tmp_path / "fc_up.pt"])
    assert sorted(cache) == ["model.layers.2.mlp.gate_up_proj.weight[gate]", "model.layers.2.mlp.gate_up_proj.weight[up]"]
    edits = [Edit("laser", "fc_gate", 2, Level(rate=9.0)), Edit("laser", "fc_up", 2, Level(rate=9.0))]
    cached, _, family = load_model(tiny_models["phi3"])
    fresh, _, _ = load_model(tiny_models["phi3"])
    apply_edits(cached, family, edits, cache)
    apply_edits(fresh, family, edits)
    name = "model.layers.2.mlp.gate_up_proj.weight"
    assert torch.equal(cached.get_parameter(name), fresh.get_parameter(name))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_next_token_scoring_is_the_models_own_distribution(tiny_models, demo_items, architecture):
    """The scoring head reads the same log-probs as the model's forward (Gemma-2 caps its logits:
    at a cap of 2 rather than its 30, so that the cap changes a random model's log-probs)."""
    model, tokenizer, family = load_model(tiny_models[architecture])
    if architecture == "gemma2":
        model.config.final_logit_softcapping = 2.0
    items = demo_items[:6]
    records = score_items(model, tokenizer, family, items, ScoringOptions(batch_size=3, show_progress=False))
    with torch.inference_mode():
        for item, record in zip(items, records):
            ids = tokenizer(item["question"] + item["answer"], return_tensors="pt").input_ids
            logprobs = torch.log_softmax(model(ids).logits[0, -2].float(), dim=-1)
            assert record["answer_logprob"] == pytest.approx(logprobs[ids[0, -1]].item(), abs=1e-5)


def test_label_words_are_the_tokens_a_sentence_ends_with(tiny_models, demo_items):
    """" true" for tokenizers that fold the space into the word (byte-level, Gemma's), the bare
    word for a SentencePiece tokenizer that marks every word start itself (Llama-2's)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from laserflow.families import FAMILIES

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train_from_iterator([item["question"] + item["answer"] + " true false" for item in demo_items],
                            trainers.BpeTrainer(vocab_size=200_000, special_tokens=["<unk>"], show_progress=False))
    # Llama-2's tokenizer.json: "▁" before the text and for every space, then BPE over the whole.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = None
    llama2_style = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    tokenizers = {"llama2-style": llama2_style} | {
        architecture: load_model(tiny_models[architecture])[1] for architecture in ("qwen2", "gemma", "gpt2")}
    prefixes = {name: FAMILIES["llama"].for_tokenizer(tokenizer).label_prefix for name, tokenizer in tokenizers.items()}
    assert prefixes == {"llama2-style": "", "qwen2": " ", "gemma": " ", "gpt2": " "}
    for name, tokenizer in tokenizers.items():
        ends = tokenizer("The claim is true", add_special_tokens=False).input_ids[-1]
        assert tokenizer(prefixes[name] + "true", add_special_tokens=False).input_ids == [ends], name
