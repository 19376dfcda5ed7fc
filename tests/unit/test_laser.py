"""The LASER core: rank formula, low-rank optimality, parameter selection, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laserflow.edits import Edit, Level
from laserflow.families import FAMILIES, detect_family
from laserflow.io import LaserflowError
from laserflow import laser
from laserflow.laser import apply_edits, edited_weight, randomized_low_rank, restore_weights, svd_factors, truncate
from laserflow.models import load_model

PAPER_RATES = [1.0, 2.0, 4.0, 6.0, 8.0, 9.0, 9.5, 9.9, 9.95]
# Kept rank for widths 4096 (GPT-J, Llama), 2048 (Phi) and 768 (RoBERTa), as the original computes it.
RANK_TABLE = {
    1.0: (3686, 1843, 691),
    2.0: (3276, 1638, 614),
    4.0: (2457, 1228, 460),
    6.0: (1638, 819, 307),
    8.0: (819, 409, 153),
    9.0: (409, 204, 76),
    9.5: (204, 102, 38),
    9.9: (40, 20, 7),
    9.95: (20, 10, 3),
}


@pytest.mark.parametrize("rate", PAPER_RATES)
def test_rank_formula_matches_the_original_table(rate):
    level = Level(rate=rate)
    ranks = tuple(level.kept_rank((4 * width, width)) for width in (4096, 2048, 768))
    assert ranks == RANK_TABLE[rate]


def test_rate_keeps_the_floating_point_quirk_that_rho_does_not():
    # (10 - 9.9) * 0.1 = 0.009999999999999966: on a width-1000 matrix the rate keeps 9, rho 0.01 keeps 10.
    assert Level(rate=9.9).kept_rank((1000, 1000)) == 9
    assert Level(rho=0.01).kept_rank((1000, 1000)) == 10
    assert Level(rate=9.9).nominal_rho == 0.01
    assert Level(rate=9.9).label == "rate9.9" and Level.parse("rate9.9") == Level(rate=9.9)
    assert Level.parse("rho0.005") == Level(rho=0.005)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rho": 0.0}, "rho 0 is outside (0, 1]"),
        ({"rho": 1.5}, "rho 1.5 is outside (0, 1]"),
        ({"rate": 10.0}, "rate 10 is outside [0, 10)"),
        ({"rate": -1.0}, "rate -1 is outside [0, 10)"),
    ],
)
def test_level_out_of_range_is_one_clear_error(kwargs, message):
    with pytest.raises(LaserflowError) as err:
        Level(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("shape, rank, subtract", [((64, 48), 5, False), ((48, 64), 17, False), ((100, 100), 1, False),
                                                  ((64, 48), 40, True), ((48, 64), 30, True)])
def test_truncation_is_the_eckart_young_optimum(shape, rank, subtract):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(shape, generator=generator)
    approx = truncate(svd_factors(weight), rank, weight if subtract else None)
    assert torch.linalg.matrix_rank(approx).item() == rank
    singular = np.linalg.svd(weight.numpy().astype(np.float64), compute_uv=False)
    optimum = np.sqrt((singular[rank:] ** 2).sum())
    error = np.linalg.norm(weight.numpy().astype(np.float64) - approx.numpy(), "fro")
    assert error == pytest.approx(optimum, rel=1e-5)
    u, s, vh = np.linalg.svd(weight.numpy().astype(np.float64), full_matrices=False)
    reference = (u[:, :rank] * s[:rank]) @ vh[:rank]
    np.testing.assert_allclose(approx.numpy(), reference, rtol=0, atol=1e-4)


def test_randomized_mode_is_seeded_and_close_to_the_optimum():
    weight = torch.randn(80, 60, generator=torch.Generator().manual_seed(1))
    first = randomized_low_rank(weight, 10, niter=2, seed=7)
    again = randomized_low_rank(weight, 10, niter=2, seed=7)
    assert torch.equal(first, again)
    assert torch.linalg.matrix_rank(first).item() == 10
    exact_error = torch.linalg.norm(weight - truncate(svd_factors(weight), 10))
    randomized_error = torch.linalg.norm(weight - first)
    assert exact_error <= randomized_error <= 1.2 * exact_error


def test_prune_zeroes_the_smallest_fraction_and_zero_zeroes_all():
    weight = torch.arange(1, 101, dtype=torch.float32).reshape(10, 10) * torch.tensor([1.0, -1.0]).repeat(50).reshape(10, 10)
    pruned = edited_weight(weight, Edit("prune", "fc_in", 0, Level(rate=3.0)))
    # sorted |w| = 1..100; alpha = sorted[int(0.3 * 100)] = 31; entries with |w| <= 31 are zeroed.
    assert int((pruned == 0).sum()) == 31
    assert torch.equal(pruned[weight.abs() > 31], weight[weight.abs() > 31])
    assert torch.count_nonzero(edited_weight(weight, Edit("zero", "fc_in", 0, None))) == 0


@pytest.mark.parametrize("family", ["gptj", "llama", "roberta", "phi"])
def test_edit_changes_only_the_selected_matrix(tiny_models, family):
    model, _, detected = load_model(tiny_models[family])
    assert detected.name == family
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    edit = Edit("laser", "fc_in", 1, Level(rate=9.0))
    originals = apply_edits(model, detected, [edit])
    (target,) = detected.parameter_names("fc_in", 1)
    assert list(originals) == [target]
    for name, param in model.named_parameters():
        if name == target:
            expected_rank = edit.level.kept_rank(tuple(param.shape))
            assert torch.linalg.matrix_rank(param.detach()).item() == expected_rank
            reference = truncate(svd_factors(before[name]), expected_rank)
            torch.testing.assert_close(param.detach(), reference, rtol=0, atol=1e-5)
        else:
            assert torch.equal(param.detach(), before[name]), name
    assert torch.equal(originals[target], before[target])  # the value the edit replaced


def test_composed_edits_and_half_precision_write_back(tiny_models):
    model, _, family = load_model(tiny_models["gptj"], dtype="float16")
    edits = [Edit("laser", "fc_in", 2, Level(rho=0.05)), Edit("laser", "fc_out", 0, Level(rate=9.0))]
    originals = apply_edits(model, family, edits)
    params = dict(model.named_parameters())
    assert set(originals) == {"transformer.h.2.mlp.fc_in.weight", "transformer.h.0.mlp.fc_out.weight"}
    # SVD in float32 of the fp16 weight, written back in fp16: ranks int(128 * 0.05) and int(128 * 0.1).
    for name, rank in (("transformer.h.2.mlp.fc_in.weight", 6), ("transformer.h.0.mlp.fc_out.weight", 12)):
        assert params[name].dtype == torch.float16
        expected = truncate(svd_factors(originals[name].float()), rank).half()
        assert torch.equal(params[name].detach(), expected)


def test_group_tau_edits_every_member(tiny_models):
    model, _, family = load_model(tiny_models["llama"])
    originals = apply_edits(model, family, [Edit("laser", "mlp", 0, Level(rho=0.5))])
    assert sorted(originals) == sorted(
        f"model.layers.0.mlp.{name}.weight" for name in ("gate_proj", "up_proj", "down_proj")
    )


def test_bad_edits_are_one_line_errors_and_leave_the_model_intact(tiny_models):
    model, _, family = load_model(tiny_models["roberta"])
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    cases = [
        (Edit("laser", "fc_up", 0, Level(rate=9.0)),
         "matrix type 'fc_up' is not defined for the roberta family; valid: k_proj, q_proj, v_proj, out_proj, fc_in, fc_out"),
        (Edit("laser", "fc_in", 3, Level(rate=9.0)), "layer 3 is outside the model's layers 0..2"),
    ]
    for edit, message in cases:
        with pytest.raises(LaserflowError) as err:
            # A valid edit first: it must not be applied when a later edit is invalid.
            apply_edits(model, family, [Edit("laser", "fc_out", 0, Level(rate=9.0)), edit])
        assert str(err.value) == message
    assert all(torch.equal(param.detach(), before[name]) for name, param in model.named_parameters())


def test_a_mapping_that_selects_no_parameter_is_reported(tiny_models):
    model, _, _ = load_model(tiny_models["gptj"])
    with pytest.raises(LaserflowError) as err:
        apply_edits(model, FAMILIES["llama"], [Edit("laser", "fc_in", 0, Level(rate=9.0))])
    assert str(err.value) == (
        "matrix type 'fc_in' at layer 0 selects no parameter: the model has no "
        "'model.layers.0.mlp.gate_proj.weight' (llama family mapping)"
    )


@pytest.mark.parametrize("svd_mode", ["exact", "randomized"])
def test_rank_0_is_the_product_of_the_originals_empty_factors(svd_mode):
    weight = torch.randn(512, 128, generator=torch.Generator().manual_seed(0))
    U, S, V = torch.svd_lowrank(weight, q=0, niter=2)  # the original's call: rate 9.95 keeps int(0.64) = 0
    assert (U.shape, S.shape, V.shape) == ((512, 0), (0,), (128, 0))
    edited = edited_weight(weight, Edit("laser", "fc_in", 0, Level(rate=9.95)), svd_mode=svd_mode)
    assert torch.equal(edited, U @ torch.diag(S) @ V.T) and edited.shape == (512, 128)


@pytest.mark.parametrize("svd_mode", ["exact", "randomized"])
def test_a_level_keeping_rank_0_scores_exactly_as_the_zero_intervention(tiny_models, demo_items, tmp_path, caplog,
                                                                         monkeypatch, svd_mode):
    from laserflow.evaluate import run_configuration
    from laserflow.io import read_jsonl, write_jsonl
    from laserflow.settings import EvaluationPaths, EvaluationSettings, ScoringOptions, SvdSettings

    monkeypatch.setattr(laser, "_warned_rank_zero", set())
    dataset = tmp_path / "counterfact.jsonl"
    write_jsonl(dataset, demo_items[:30])
    settings = EvaluationSettings("tiny", "counterfact", scoring=ScoringOptions(batch_size=8, show_progress=False),
                                  svd=SvdSettings(mode=svd_mode))
    results = {}
    # rate 9.95 keeps int(128 · 0.005000000000000071) = 0 of the 256x128 fc_in matrix.
    for edit in (Edit("laser", "fc_in", 1, Level(rate=9.95)), Edit("zero", "fc_in", 1, None)):
        paths = EvaluationPaths(str(tiny_models["gptj"]), str(dataset), str(tmp_path / f"{edit.intervention}.json"),
                                str(tmp_path / f"{edit.intervention}.items.jsonl.gz"))
        results[edit.intervention] = (run_configuration(settings, [edit], paths), read_jsonl(paths.records))
    (laser_summary, laser_records), (zero_summary, zero_records) = results["laser"], results["zero"]
    assert laser_records == zero_records
    assert laser_summary["metrics"] == zero_summary["metrics"]
    assert laser_summary["edits"][0]["matrices"] == {"transformer.h.1.mlp.fc_in.weight": {"shape": [256, 128],
                                                                                         "kept_rank": 0}}
    assert "matrices" not in zero_summary["edits"][0]
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == ["rate9.95 keeps rank 0 of transformer.h.1.mlp.fc_in.weight (256x128): writing the zero "
                        "matrix, as the original does"]


def test_kept_ranks_are_recorded_per_matrix_and_warned_once_per_job(tiny_models, caplog, monkeypatch):
    from laserflow.laser import describe_edits

    monkeypatch.setattr(laser, "_warned_rank_zero", set())
    model, _, family = load_model(tiny_models["llama"])
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    edits = [Edit("laser", "mlp", 0, Level(rho=0.005)), Edit("prune", "fc_in", 2, Level(rate=5.0))]
    for _ in range(2):
        restore_weights(model, apply_edits(model, family, edits))
    assert all(torch.equal(param.detach(), before[name]) for name, param in model.named_parameters())
    # int(128 · 0.005) = 0: each of the three MLP matrices (narrow side 128) keeps rank 0.
    assert describe_edits(model, family, edits) == [
        {"intervention": "laser", "tau": "mlp", "layer": 0, "level": "rho0.005", "rho": 0.005, "matrices": {
            "model.layers.0.mlp.gate_proj.weight": {"shape": [256, 128], "kept_rank": 0},
            "model.layers.0.mlp.up_proj.weight": {"shape": [256, 128], "kept_rank": 0},
            "model.layers.0.mlp.down_proj.weight": {"shape": [128, 256], "kept_rank": 0}}},
        {"intervention": "prune", "tau": "fc_in", "layer": 2, "level": "rate5", "rho": 0.5, "rate": 5.0},
    ]
    assert len([record for record in caplog.records if record.levelname == "WARNING"]) == 3


def test_family_detection_from_model_config():
    assert detect_family({"model_type": "mistral"}).name == "llama"
    assert detect_family({"model_type": "qwen2"}).name == "llama"
    with pytest.raises(LaserflowError) as err:
        detect_family({"model_type": "bert"}, source="models/x")
    assert str(err.value).startswith("models/x: architecture model_type='bert' is not mapped to a LASER family")


def test_edit_needs_a_level_except_zero():
    with pytest.raises(LaserflowError, match="intervention 'laser' needs a rate or rho"):
        Edit("laser", "fc_in", 0, None)
    with pytest.raises(LaserflowError, match="unknown intervention 'svd'"):
        Edit("svd", "fc_in", 0, Level(rate=1.0))


def test_each_job_on_a_multi_gpu_host_claims_its_own_device(tmp_path):
    from laserflow.models import claim_gpu

    first, first_lock = claim_gpu(2, tmp_path)
    second, second_lock = claim_gpu(2, tmp_path)
    assert (first, second) == (0, 1)
    with pytest.raises(LaserflowError, match="all 2 GPUs are held by other laserflow jobs"):
        claim_gpu(2, tmp_path)
    first_lock.close()  # a finished job releases its GPU
    assert claim_gpu(2, tmp_path)[0] == 0
    second_lock.close()
