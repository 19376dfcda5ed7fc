"""End to end on the seven Hugging Face-shaped datasets: Snakemake prepares each fixture, scores it
with each family's protocol, writes class baselines and the table; a malformed row stops its rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from laserflow.data.prepare import build_items
from laserflow.io import read_json, read_jsonl, sha256_file

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
MODELS = {
    name: {"tiny": {"family": name, "layers": 2, "hidden": 64, "heads": 4, "intermediate": 128, "seed": 2}}
    for name in ("llama", "roberta")
}
DATASETS = {
    "hotpotqa": {"local": str(DEMO / "hotpotqa.json"), "answer_tokenizer": "llama"},
    "fever": {"local": "fever-parquet", "expected_items": 82},  # the hub's per-split Parquet files
    "bios_profession": {"local": str(DEMO / "bias_in_bios.json")},
    "bigbench_epistemic": {"local": str(DEMO / "bigbench_epistemic_task.json")},  # BIG-bench's task.json
}


def write_config(workdir, datasets):
    config = {
        "models": MODELS,
        "datasets": datasets,
        "sweep": {"taus": ["fc_in"], "layers": [1], "rates": [9]},
        "evaluation": {"device": "cpu", "batch_size": 16, "threads": 1},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, snakemake):
    import pyarrow as pa
    import pyarrow.parquet as pq

    workdir = tmp_path_factory.mktemp("datasets")
    (workdir / "fever-parquet").mkdir()
    for split, rows in read_json(DEMO / "fever.json")["splits"].items():
        pq.write_table(pa.Table.from_pylist(rows), workdir / "fever-parquet" / f"{split}-00000-of-00001.parquet")
    write_config(workdir, DATASETS)
    snakemake(workdir)
    return workdir


def test_each_dataset_is_prepared_from_its_raw_source(workdir):
    hotpotqa = read_jsonl(workdir / "resources/data/hotpotqa.jsonl")
    # The answer filter ran with the configured model's tokenizer.
    assert hotpotqa == build_items("hotpotqa", read_json(DEMO / "hotpotqa.json"), "hotpotqa.json",
                                   workdir / "resources/models/llama")
    # FEVER from the hub's Parquet layout: the items of the hub rows, each file's sha256 in provenance.
    assert read_jsonl(workdir / "resources/data/fever.jsonl") == build_items(
        "fever", read_json(DEMO / "fever.json"), "fever.json")
    shards = {f"fever-parquet/{split}-00000-of-00001.parquet": sha256_file(
        workdir / f"fever-parquet/{split}-00000-of-00001.parquet") for split in ("paper_dev", "paper_test")}
    for model in MODELS:
        assert read_json(workdir / f"results/{model}/fever/base.json")["provenance"]["dataset"]["raw_files"] == shards
    epistemic = read_jsonl(workdir / "resources/data/bigbench_epistemic.jsonl")
    # BIG-bench's seed-42 split of the 20 examples: the last max(int(0.2 n), 16) validate.
    assert [item["split"] for item in epistemic] == ["validation"] * 16 + ["train"] * 4


def test_each_family_scores_each_dataset_by_its_protocol(workdir):
    methods = {(model, dataset): read_json(workdir / f"results/{model}/{dataset}/base.json")["scoring"]
               for model in MODELS for dataset in DATASETS}
    assert methods[("llama", "hotpotqa")] == {"method": "generation", "batch_size": 16, "max_new_tokens": 15,
                                              "generation_match": "full_text", "do_sample": False}
    assert methods[("roberta", "hotpotqa")] == {"method": "mask_fill", "batch_size": 16, "masks": 5,
                                                "masked_loss": "original"}
    assert methods[("llama", "fever")]["method"] == methods[("roberta", "bios_profession")]["method"] == "labels"
    # RoBERTa attends both ways: its choices stay one row each (evaluation.shared_prompt is for causal models).
    assert methods[("roberta", "bigbench_epistemic")] == {"method": "sequences", "batch_size": 16,
                                                          "masked_loss": "original", "shared_prompt": False}


def test_selection_carries_class_baselines_and_the_table_shows_them(workdir):
    with open(workdir / "results/tables/table1.csv") as handle:
        rows = {(row["dataset"], row["model"]): row for row in csv.DictReader(handle)}
    assert len(rows) == len(MODELS) * len(DATASETS)
    for model in MODELS:
        selection = read_json(workdir / f"results/{model}/fever/selection.json")
        items = read_jsonl(workdir / "resources/data/fever.jsonl")
        test = [item["label"] for item in items[selection["n_val"]:]]
        val = [item["label"] for item in items[:selection["n_val"]]]
        majority = max((0, 1), key=lambda label: (val.count(label), -label))
        assert selection["baselines"]["always"]["true"]["test"]["acc"] == pytest.approx(100 * test.count(1) / len(test))
        assert selection["baselines"]["majority"]["choice"] == ("false", "true")[majority]
        assert selection["baselines"]["minority"]["choice"] == ("false", "true")[1 - majority]
        assert float(rows[("fever", model)]["majority_test_acc"]) == pytest.approx(
            100 * test.count(majority) / len(test), rel=1e-6)
        assert rows[("hotpotqa", model)]["majority_test_acc"] == ""
    assert "| fever | llama |" in (workdir / "results/tables/table1.md").read_text()


def test_a_malformed_row_stops_its_rule_with_one_line_and_no_output(tmp_path, snakemake):
    raw = read_json(DEMO / "fever.json")
    del raw["splits"]["paper_test"][3]["claim"]
    broken = tmp_path / "fever.json"
    broken.write_text(json.dumps(raw))
    write_config(tmp_path, {"fever": {"local": str(broken)}})
    result = snakemake(tmp_path, "resources/data/fever.jsonl", check=False)
    assert result.returncode != 0
    assert f"laserflow: error: {broken}: split paper_test row 3: missing field 'claim'" in result.stderr
    assert not (tmp_path / "resources/data/fever.jsonl").exists()
    assert not list((tmp_path / "resources/data").glob("*"))
