"""Selection: validation accuracy, ties by validation log-loss, the 20% boundary."""

from __future__ import annotations

import pytest

from laserflow.io import LaserflowError
from laserflow.selection import baselines, rank_candidates, select_best, selection, split_metrics, validation_size


def summary(tau, layer, level, val_acc, val_loss, test_acc=50.0, test_loss=1.0, intervention="laser"):
    rate = float(level[4:]) if level.startswith("rate") else None
    return {
        "model": "m", "dataset": "d", "n_items": 10, "n_val": 2,
        "edits": [{"intervention": intervention, "tau": tau, "layer": layer, "level": level,
                   "rho": round((10 - rate) * 0.1, 10), "rate": rate}],
        "metrics": {"val": {"acc": val_acc, "logloss": val_loss}, "test": {"acc": test_acc, "logloss": test_loss}},
    }


def test_ties_in_accuracy_are_broken_by_lower_validation_loss():
    runs = [summary("fc_in", 2, "rate9.9", 40.0, 2.0), summary("fc_in", 2, "rate9", 40.0, 1.5),
            summary("fc_out", 1, "rate2", 30.0, 0.1)]
    assert select_best(runs) == 1


def test_higher_accuracy_wins_over_lower_loss_and_the_first_wins_full_ties():
    runs = [summary("fc_in", 2, "rate9.9", 40.0, 2.0), summary("fc_out", 2, "rate9.9", 40.0, 2.0),
            summary("fc_in", 1, "rate2", 45.0, 3.0)]
    assert select_best(runs) == 2
    assert select_best(runs[:2]) == 0


def test_candidates_rank_in_the_selection_rules_order():
    runs = [summary("fc_in", 2, "rate9.9", 40.0, 2.0), summary("fc_out", 2, "rate9.9", 45.0, 3.0),
            summary("fc_in", 1, "rate2", 40.0, 1.0), summary("fc_out", 1, "rate2", 40.0, 2.0)]
    # 45 first; then the three at 40 by loss (1.0, then 2.0 twice in sweep order).
    assert rank_candidates(runs) == [1, 2, 0, 3]
    assert select_best(runs) == rank_candidates(runs)[0]


def test_selection_reports_test_numbers_and_ignores_other_interventions():
    base = summary("fc_in", 0, "rate1", 10.0, 5.0, test_acc=11.0, test_loss=5.5)
    base["edits"] = []
    runs = [summary("fc_in", 2, "rate9.9", 40.0, 2.0, test_acc=33.0, test_loss=2.2),
            summary("fc_in", 1, "rate9", 90.0, 0.1, intervention="prune")]
    record, chosen = selection(base, runs)
    assert (record["candidates"], chosen) == (1, 0)
    assert record["chosen"]["tau"] == "fc_in" and record["chosen"]["layer"] == 2 and record["chosen"]["rho"] == 0.01
    assert record["base"]["test"] == {"acc": 11.0, "logloss": 5.5}
    assert record["laser"]["test"] == {"acc": 33.0, "logloss": 2.2}
    with pytest.raises(LaserflowError, match="no LASER configuration to select from"):
        selection(base, runs[1:])


@pytest.mark.parametrize("n, n_val", [(13, 2), (65757, 13151), (5882, 1176), (13086, 2617), (10, 2), (4, 0)])
def test_validation_boundary_is_int_of_twenty_percent(n, n_val):
    assert validation_size(n) == n_val


def test_split_metrics_uses_the_first_part_for_validation():
    records = [{"correct": c, "answer_logprob": lp, "answer_len": n}
               for c, lp, n in [(True, -1.0, 1), (False, -4.0, 2), (True, -3.0, 1), (False, -2.0, 1), (True, -6.0, 3)]]
    metrics = split_metrics(records, validation_size(len(records)))
    assert metrics["val"] == {"n": 1, "acc": 100.0, "logloss": 1.0}
    assert metrics["test"]["n"] == 4
    assert metrics["test"]["acc"] == 50.0
    assert metrics["test"]["logloss"] == pytest.approx((2.0 + 3.0 + 2.0 + 2.0) / 4)


def test_class_baselines_use_the_validation_majority_and_score_both_parts():
    labels = [1, 1, 0, 1, 0] + [0, 0, 0, 1, 0, 0, 1, 0]  # validation: 3 × 1, 2 × 0
    items = [{"index": i, "label": label} for i, label in enumerate(labels)]
    out = baselines(items, 5, ("entailment", "non-entailment"))
    assert out["always"]["entailment"] == {"val": {"n": 5, "acc": 40.0}, "test": {"n": 8, "acc": 75.0}}
    assert out["always"]["non-entailment"]["test"] == {"n": 8, "acc": 25.0}
    # The majority is chosen on the validation part, even where the test part disagrees.
    assert out["majority"] == {"choice": "non-entailment", "val": {"n": 5, "acc": 60.0}, "test": {"n": 8, "acc": 25.0}}
    assert out["minority"]["choice"] == "entailment"
    tied_items = [{"index": i, "label": label} for i, label in enumerate([1, 0, 1, 0, 0, 0, 1])]
    tied = baselines(tied_items, 4, ("false", "true"))  # validation 2 × 1, 2 × 0: the first wins
    assert (tied["majority"]["choice"], tied["minority"]["choice"]) == ("false", "true")


def test_a_non_finite_candidate_is_never_selected():
    runs = [summary("fc_in", 2, "rate9.9", 40.0, float("nan")), summary("fc_in", 2, "rate9", 30.0, 1.5)]
    with pytest.raises(LaserflowError) as err:
        select_best(runs)
    assert str(err.value) == "laser fc_in layer 2 rate9.9: val logloss is nan; refusing to select from it"
    runs[0]["metrics"]["val"]["logloss"] = 2.0
    runs[1]["metrics"]["test"]["acc"] = float("inf")
    with pytest.raises(LaserflowError) as err:
        select_best(runs)
    assert str(err.value) == "laser fc_in layer 2 rate9: test acc is inf; refusing to select from it"


def test_a_base_without_validation_items_is_one_line():
    base = summary("fc_in", 0, "rate1", None, None)
    base.update(edits=[], n_val=0, provenance={"target": "results/m/d/base.json"})
    run = summary("fc_in", 2, "rate9.9", None, None)
    run["n_val"] = 0
    with pytest.raises(LaserflowError) as err:
        selection(base, [run])
    assert str(err.value) == "results/m/d/base.json: no validation items to select on; raise selection.val_fraction"
