"""The shipped configs expand offline to the expected jobs; Snakemake reports a bad config in one line."""

from __future__ import annotations

import subprocess
import sys

import yaml


def dry_run(repo, workdir, *configfiles):
    """A dry run of the repository's workflow on ``configfiles`` (relative to the repository), in the
    empty ``workdir`` so that no earlier output counts."""
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(repo / "Snakefile"), "--directory",
                           str(workdir), "--configfile", *(str(repo / path) for path in configfiles)],
                          cwd=repo, capture_output=True, text=True, timeout=300)


def test_paper_config_expands_offline_to_the_full_search(repo, planned_jobs, tmp_path):
    result = dry_run(repo, tmp_path, "configs/paper.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = planned_jobs(result.stdout + result.stderr)
    # 8 datasets × (GPT-J 28, Llama-2 32, RoBERTa 12 layers): one job per layer runs its
    # {fc_in, fc_out} × 9 rates on the validation part; the chosen configuration of each of the 24
    # cells is then scored on every item. One SVD per matrix serves every dataset.
    assert counts["evaluate_layer"] == 8 * (28 + 32 + 12)
    assert "evaluate_configuration" not in counts
    assert (counts["evaluate_base"], counts["select"], counts["evaluate_chosen"]) == (24, 24, 24)
    assert counts["svd"] == (28 + 32 + 12) * 2
    assert counts["prepare_dataset"] == 8
    # CounterFact from ROME's URL, the others from the hub (the Bios datasets share one fetch); the
    # models snapshotted once.
    assert (counts["download_dataset"], counts["fetch_hub_dataset"], counts["snapshot_model"]) == (1, 6, 3)
    # One job per configuration, every item scored: today's paper search as 10,368 jobs.
    each = tmp_path / "each.yaml"
    each.write_text("sweep: {group: configuration, score: all}\n")
    result = dry_run(repo, tmp_path / "each", "configs/paper.yaml", str(each))
    assert result.returncode == 0, result.stderr[-2000:]
    counts = planned_jobs(result.stdout + result.stderr)
    assert counts["evaluate_configuration"] == 8 * (28 + 32 + 12) * 2 * 9
    assert "evaluate_layer" not in counts and "evaluate_chosen" not in counts
    # Composition and the higher-order components analysis on GPT-J × CounterFact only, from that
    # cell's sweep files (no SVD of their own): one job each, a figure each, their tables.
    beyond = ("compose", "composition_figure", "composition_table", "analysis", "analysis_figure", "corrections_table")
    assert [counts[rule] for rule in beyond] == [1] * 6


def test_artifact_evaluation_runs_only_the_base_models_and_the_published_configurations(repo, planned_jobs, tmp_path):
    result = dry_run(repo, tmp_path, "configs/paper.yaml", "configs/paper-selected.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = planned_jobs(result.stdout + result.stderr)
    # 24 cells; a matrix several cells truncate gets one SVD (GPT-J fc_in 27: CounterFact, HotPotQA
    # and WikidataQA; Llama-2 fc_in 27 and 30, RoBERTa fc_in 3: two cells each).
    assert (counts["evaluate_base"], counts["evaluate_configuration"], counts["svd"]) == (24, 24, 19)
    assert "evaluate_layer" not in counts and "evaluate_chosen" not in counts  # listed configurations, no search
    assert "compose" not in counts and "analysis" not in counts


def test_the_robustness_config_redraws_the_published_configurations(repo, planned_jobs, tmp_path):
    result = dry_run(repo, tmp_path / "redrawn", "configs/paper.yaml", "configs/paper-robustness.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = planned_jobs(result.stdout + result.stderr)
    # The published configurations (as configs/paper-selected.yaml) and one robustness job per cell,
    # each the exact SVD and 10 draws: 24 × 11 evaluations.
    assert (counts["evaluate_base"], counts["evaluate_configuration"], counts["svd"]) == (24, 24, 19)
    assert (counts["robustness"], counts["robustness_table"], counts["robustness_figure"]) == (24, 1, 1)
    assert "robustness" not in planned_jobs(dry_run(repo, tmp_path / "plain", "configs/paper.yaml").stdout)


def test_the_figure_config_runs_one_cell_and_fetches_only_what_it_needs(repo, planned_jobs, tmp_path):
    result = dry_run(repo, tmp_path, "configs/paper.yaml", "configs/paper-figure.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = planned_jobs(result.stdout + result.stderr)
    assert (counts["evaluate_base"], counts["evaluate_layer"], counts["svd"]) == (1, 28, 6 * 28)
    assert "evaluate_chosen" not in counts  # sweep.score: all
    assert (counts["download_dataset"], counts["snapshot_model"], counts["prepare_dataset"]) == (1, 1, 1)
    assert "fetch_hub_dataset" not in counts and "compose" not in counts and "analysis" not in counts


def test_snakemake_reports_a_bad_config_in_one_line(repo, tmp_path):
    config = yaml.safe_load((repo / "config.yaml").read_text())
    config["sweep"]["layers"] = [7]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = dry_run(repo, tmp_path, str(bad))
    assert result.returncode != 0
    assert f"laserflow: error: {bad}: sweep.layers: layer 7 is beyond model 'tiny-gptj' (layers 0..2)" in result.stderr
