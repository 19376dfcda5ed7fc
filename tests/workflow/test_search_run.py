"""The search's cost switches change no number: layer groups write the files one job per
configuration writes, and a validation-only search chooses the same configurations and reports
the same test numbers as one that scores every item."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from laserflow.io import read_json, read_jsonl

MODELS = {
    name: {"tiny": {"family": name, "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128, "seed": 3}}
    for name in ("gptj", "llama")
}
MODES = {"each": {"score": "all", "group": "configuration"}, "grouped": {"score": "all", "group": "layer"},
         "search": {"score": "validation", "group": "layer"}}


def write_config(workdir, demo, mode, rates=(9, 2)):
    config = {
        "models": MODELS,
        "datasets": {"counterfact": {"local": "counterfact.json"},
                     "fever": {"local": str(demo / "fever.json")}},
        "sweep": {"taus": ["fc_in", "fc_out"], "layers": "all", "rates": list(rates)} | MODES[mode],
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, repo, demo_counterfact, snakemake):
    """The same search in each mode: mode -> its working directory."""
    out = {}
    for mode in MODES:
        workdir = out[mode] = tmp_path_factory.mktemp(mode)
        (workdir / "counterfact.json").write_text(json.dumps(json.loads(demo_counterfact.read_text())[:20]))
        write_config(workdir, repo / "data" / "demo", mode)
        snakemake(workdir)
    return out


def run_files(workdir):
    return sorted(path.relative_to(workdir) for path in (workdir / "results").glob("*/*/runs/**/*.json"))


def without_timing(path):
    summary = read_json(path)
    summary.pop("timing")
    return summary


def test_layer_groups_write_the_files_each_configuration_writes(runs):
    each, grouped = runs["each"], runs["grouped"]
    files = run_files(each)
    assert len(files) == 2 * 2 * 2 * 2 * 2 and files == run_files(grouped)  # models × datasets × layers × τ × rates
    for path in files:
        assert without_timing(grouped / path) == without_timing(each / path), path
        records = path.with_name(path.name.removesuffix(".json") + ".items.jsonl.gz")
        assert (grouped / records).read_bytes() == (each / records).read_bytes(), records


def test_a_layer_group_computes_the_layers_below_once(runs):
    each, grouped = runs["each"], runs["grouped"]
    for model in MODELS:
        for layer in (0, 1):
            group = [read_json(path) for path in (grouped / "results" / model / "fever" / "runs").glob(f"laser/*/{layer}/*.json")]
            alone = [read_json(path) for path in (each / "results" / model / "fever" / "runs").glob(f"laser/*/{layer}/*.json")]
            tokens = alone[0]["timing"]["layer_tokens"] / 2  # one pass of one layer over the scored batches
            assert {run["timing"]["layer_tokens"] for run in alone} == {2 * tokens}
            # Four configurations: the layers below `layer` once, the layers from it on four times.
            assert sum(run["timing"]["layer_tokens"] for run in group) == pytest.approx(
                (layer + 4 * (2 - layer)) * tokens, abs=4)


def test_a_validation_only_search_scores_the_validation_items_as_a_full_one(runs):
    grouped, search = runs["grouped"], runs["search"]
    for path in run_files(grouped):
        full, part = read_json(grouped / path), read_json(search / path)
        assert (full["score"], part["score"]) == ("all", "validation")
        assert part["metrics"] == {"val": full["metrics"]["val"]}
        records = path.with_name(path.name.removesuffix(".json") + ".items.jsonl.gz")
        assert read_jsonl(search / records) == read_jsonl(grouped / records)[:full["n_val"]]


def test_a_validation_only_search_chooses_and_reports_the_same(runs):
    each, search = runs["each"], runs["search"]
    with open(each / "results/tables/table1.csv") as mine, open(search / "results/tables/table1.csv") as theirs:
        full, part = list(csv.DictReader(mine)), list(csv.DictReader(theirs))
    assert len(full) == len(part) == 4
    for row, other in zip(full, part):
        assert {key: value for key, value in row.items() if key != "laser_file"} == \
            {key: value for key, value in other.items() if key != "laser_file"}
        selection = read_json(each / "results" / row["model"] / row["dataset"] / "selection.json")
        chosen = read_json(search / "results" / row["model"] / row["dataset"] / "chosen.json")
        # The chosen configuration's own job reproduces the full search's numbers bit for bit.
        assert chosen["edits"] == [selection["chosen"]]
        assert chosen["metrics"]["val"] == selection["laser"]["val"]
        assert chosen["metrics"]["test"] == selection["laser"]["test"]


def test_one_job_per_configuration_reruns_only_a_new_rate(runs, repo, snakemake, planned_jobs):
    each = runs["each"]
    old = {path: (each / path).stat().st_mtime_ns for path in run_files(each)}
    write_config(each, repo / "data" / "demo", "each", rates=(9, 2, 6))
    planned = planned_jobs(snakemake(each, "-n").output)
    assert planned["evaluate_configuration"] == 2 * 2 * 2 * 2  # models × datasets × layers × τ
    assert "evaluate_layer" not in planned and "evaluate_chosen" not in planned
    snakemake(each)
    assert {path: (each / path).stat().st_mtime_ns for path in old} == old
