"""The seven non-CounterFact datasets: order, filters and sizes as the original code builds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from laserflow.data.prepare import build_items, prepare_dataset
from laserflow.data.bigbench import task_json_splits
from laserflow.data.catalog import DATASETS, PROFESSIONS
from laserflow.data.hotpotqa import hotpotqa_items
from laserflow.data.hub import fetch_configured, fetch_hub_dataset
from laserflow.data.local import read_raw
from laserflow.io import LaserflowError, read_json, read_jsonl, sha256_file, write_jsonl

REPO = Path(__file__).resolve().parents[2]

DEMO = REPO / "data" / "demo"
RAW_FILES = {
    "hotpotqa": "hotpotqa.json",
    "fever": "fever.json",
    "bios_gender": "bias_in_bios.json",
    "bios_profession": "bias_in_bios.json",
    "truthfulqa": "truthfulqa.json",
    "bigbench_epistemic": "bigbench_epistemic.json",
    "bigbench_wikidata": "bigbench_wikidata.json",
}


def words_and_bos(answer: str) -> int:
    """A stand-in for the Llama tokenizer: one id per word, plus BOS."""
    return len(answer.split()) + 1


def demo(name: str, file: str | None = None) -> list[dict]:
    raw = read_json(DEMO / (file or RAW_FILES[name]))
    if name == "hotpotqa":
        return hotpotqa_items(raw, "hotpotqa.json", words_and_bos)
    return build_items(name, raw, file or RAW_FILES[name])


@pytest.mark.parametrize("name, file, size", [
    ("hotpotqa", None, 75),
    ("fever", None, 82),
    ("bios_gender", None, 100),
    ("bios_profession", None, 80),
    ("truthfulqa", None, 75),
    ("bigbench_epistemic", None, 100),
    ("bigbench_wikidata", None, 90),
    ("bigbench_epistemic", "bigbench_epistemic_task.json", 20),
    ("bigbench_wikidata", "bigbench_wikidata_task.json", 17),
])
def test_demo_fixture_sizes(name, file, size):
    items = demo(name, file)
    assert len(items) == size
    assert [item["index"] for item in items] == list(range(size))
    assert all(isinstance(item["question"], str) and item["question"] for item in items)
    if DATASETS[name].is_classification:
        assert {item["label"] for item in items} == set(range(len(DATASETS[name].choices)))


def test_hotpotqa_takes_len_validation_train_rows_first_then_validation_and_filters_long_answers():
    raw = read_json(DEMO / "hotpotqa.json")
    train, validation = raw["splits"]["train"], raw["splits"]["validation"]
    items = demo("hotpotqa")
    assert [item["split"] for item in items] == ["train"] * 37 + ["validation"] * 38
    assert items[0] == {"index": 0, "question": train[0]["question"], "answer": "Paris", "split": "train"}
    assert items[37]["question"] == validation[0]["question"]
    answers = {item["answer"] for item in items}
    assert "Sahara" not in answers  # train row 40: beyond len(validation) = 40 rows
    assert all(words_and_bos(answer) <= 15 for answer in answers)
    assert "Mars" in answers and " Mars " not in answers  # stripped
    assert "What instrument did the founder of the band Queen, Brian May, play?" in {i["question"] for i in items}


def test_hotpotqa_answer_limit_is_15_ids_with_bos_and_the_counter_runs_over_rows():
    row = lambda words: {"question": "Q?", "answer": " ".join(["word"] * words)}  # noqa: E731
    raw = {"splits": {"train": [row(15), row(14), row(1)], "validation": [row(14), row(15)]}}
    items = hotpotqa_items(raw, "raw.json", words_and_bos)
    # train rows 0 and 1 are read (len(validation) = 2); row 0 is too long, so one train item is left.
    assert [(item["split"], len(item["answer"].split())) for item in items] == [("train", 14), ("validation", 14)]


@pytest.fixture(scope="module")
def llama_tokenizer(tmp_path_factory):
    """A tiny Llama-style tokenizer (BOS + one id per known word) saved as a model directory."""
    from laserflow.tiny import _train_tokenizer

    texts = [row["answer"] for split in read_json(DEMO / "hotpotqa.json")["splits"].values() for row in split]
    path = tmp_path_factory.mktemp("tokenizer")
    _train_tokenizer("metaspace", texts).save_pretrained(path)
    return path


def test_prepare_hotpotqa_counts_answers_with_the_given_tokenizer(tmp_path, llama_tokenizer):
    out = tmp_path / "hotpotqa.jsonl"
    assert prepare_dataset("hotpotqa", DEMO / "hotpotqa.json", out, answer_tokenizer=llama_tokenizer) == 75
    assert read_jsonl(out) == demo("hotpotqa")
    with pytest.raises(LaserflowError) as err:
        prepare_dataset("hotpotqa", DEMO / "hotpotqa.json", tmp_path / "other.jsonl")
    assert str(err.value).startswith("dataset hotpotqa: answer_tokenizer is not set")
    assert not (tmp_path / "other.jsonl").exists()


def test_fever_keeps_claims_with_one_label_in_first_occurrence_order_dev_then_test():
    items = demo("fever")
    questions = [item["question"] for item in items]
    assert len(questions) == len(set(questions))
    assert [item["split"] for item in items] == ["paper_dev"] * 42 + ["paper_test"] * 40
    assert items[:3] == [
        {"index": 0, "question": "Paris is the capital of France.", "label": 1, "split": "paper_dev"},
        {"index": 1, "question": "The Nile flows through Egypt.", "label": 1, "split": "paper_dev"},
        {"index": 2, "question": "Mount Everest is in Chile.", "label": 0, "split": "paper_dev"},  # twice, agreeing
    ]
    for conflicting in ("Marie Curie won two Nobel Prizes.", "Venus is the closest planet to the Sun.",
                        "The piano is a percussion instrument."):
        assert conflicting not in questions
    assert "The Beatles were formed in Liverpool" in questions  # kept as it is, no final "."


def test_fever_accepts_int_labels_and_rejects_a_claim_in_both_splits():
    raw = {"splits": {"paper_dev": [{"claim": "A.", "label": 1}, {"claim": "B", "label": 0}],
                      "paper_test": [{"claim": "C.", "label": "SUPPORTS"}, {"claim": "B", "label": 0}]}}
    with pytest.raises(LaserflowError) as err:
        build_items("fever", raw, "raw.json")
    assert str(err.value) == (
        "raw.json: split paper_test row 1: the claim in field 'claim' also appears in split paper_dev row 1")
    raw["splits"]["paper_test"].pop()
    assert [(i["question"], i["label"]) for i in build_items("fever", raw, "raw.json")] == [
        ("A.", 1), ("B", 0), ("C.", 1)]


def test_bios_gender_keeps_every_dev_row_and_profession_maps_labhc_indices_by_name():
    rows = read_json(DEMO / "bias_in_bios.json")["splits"]["dev"]
    gender = demo("bios_gender")
    assert [(item["question"], item["label"]) for item in gender] == [(r["hard_text"], r["gender"]) for r in rows]
    raw = {"splits": {"dev": [{"hard_text": "a", "profession": 21, "gender": 0},   # professor
                              {"hard_text": "b", "profession": 13, "gender": 1},   # nurse: not one of the 8
                              {"hard_text": "c", "profession": 12, "gender": 1},   # model
                              {"hard_text": "d", "profession": 11, "gender": 0},   # journalist
                              {"hard_text": "e", "profession": 0, "gender": 0}]}}  # accountant
    items = build_items("bios_profession", raw, "raw.json")
    assert [(item["question"], PROFESSIONS[item["label"]]) for item in items] == [
        ("a", "professor"), ("c", "model"), ("d", "journalist")]
    assert [item["label"] for item in items] == [7, 3, 0]


def test_truthfulqa_is_question_major_in_mc2_order():
    rows = read_json(DEMO / "truthfulqa.json")["splits"]["validation"]
    items = demo("truthfulqa")
    expected = [(number, row["question"], choice, label) for number, row in enumerate(rows)
                for choice, label in zip(row["mc2_targets"]["choices"], row["mc2_targets"]["labels"])]
    assert [(i["record"], i["question"], i["statement"], i["label"]) for i in items] == expected
    assert items[1]["statement"] == "Nothing much happens; it is excreted"  # no final ".", as in the source


def test_bigbench_epistemic_has_the_real_class_balance_and_labels_index_the_choices():
    items = demo("bigbench_epistemic")
    assert Counter(item["label"] for item in items) == {0: 37, 1: 63}
    assert [item["split"] for item in items] == ["validation"] * 20 + ["train"] * 80


def test_bigbench_wikidata_keeps_single_target_rows_stripped():
    raw = {"splits": {"validation": [{"inputs": " The capital of Peru is ", "targets": [" Lima "]}],
                      "train": [{"inputs": "The continent of Turkey is", "targets": ["Europe", "Asia"]},
                                {"inputs": "The sport played by Usain Bolt is", "targets": ["athletics"]}]}}
    assert build_items("bigbench_wikidata", raw, "raw.json") == [
        {"index": 0, "question": "The capital of Peru is", "answer": "Lima", "split": "validation"},
        {"index": 1, "question": "The sport played by Usain Bolt is", "answer": "athletics", "split": "train"},
    ]


@pytest.mark.parametrize("name", ["bigbench_epistemic", "bigbench_wikidata"])
def test_task_json_rows_equal_the_tasksource_rows_of_the_same_examples(name):
    task = read_json(DEMO / f"{name}_task.json")
    splits = task_json_splits(task, "task.json", DATASETS[name])
    tasksource = [row for rows in read_json(DEMO / f"{name}.json")["splits"].values() for row in rows]
    converted = [row for split in ("validation", "train") for _, row in splits[split]]
    assert len(converted) == len({json.dumps(example) for example in task["examples"]})  # duplicates dropped
    assert all(row in tasksource for row in converted)
    items = demo(name, f"{name}_task.json")
    # Each item keeps the split of BIG-bench's seed-42 split it came from, validation first.
    kept = [split for split in ("validation", "train") for _, row in splits[split] if len(row["targets"]) == 1]
    assert [item["split"] for item in items] == kept and set(kept) == {"validation", "train"}


def test_task_json_formatting_follows_bigbench():
    epistemic = read_json(DEMO / "bigbench_epistemic_task.json")
    example = epistemic["examples"][0]
    (row,) = [row for rows in task_json_splits(epistemic, "t", DATASETS["bigbench_epistemic"]).values()
              for number, row in rows if number == 0]
    assert row == {
        "inputs": "Identify the relation between the following premises and hypotheses, choosing from the options "
                  f"'entailment' or 'non-entailment'.\n\n{example['input']}\nRelation:",
        "targets": [max(example["target_scores"], key=example["target_scores"].get)],
    }
    wikidata = {"name": "qa_wikidata", "example_input_prefix": "\n", "example_output_prefix": " ",
                "examples": [{"input": f"The capital of country {n} is", "target": f"city {n}"} for n in range(20)]}
    splits = task_json_splits(wikidata, "t", DATASETS["bigbench_wikidata"])
    assert [len(rows) for rows in splits.values()] == [16, 4]  # at least 16 validation examples
    assert {"inputs": "The capital of country 3 is", "targets": ["city 3"]} in [r for rows in splits.values()
                                                                               for _, r in rows]
    wikidata["examples"] = [{"input": f"x{n}", "target": "y"} for n in range(2000)]
    assert [len(rows) for rows in task_json_splits(wikidata, "t", DATASETS["bigbench_wikidata"]).values()] == [400, 1600]


def test_task_json_of_another_task_or_too_small_is_refused():
    task = read_json(DEMO / "bigbench_wikidata_task.json")
    with pytest.raises(LaserflowError) as err:
        build_items("bigbench_epistemic", task, "task.json")
    assert str(err.value) == "task.json: task.json of task 'qa_wikidata', expected 'epistemic_reasoning'"
    task["examples"] = task["examples"][:16]
    with pytest.raises(LaserflowError) as err:
        build_items("bigbench_wikidata", task, "task.json")
    assert str(err.value) == (
        "task.json: 16 distinct examples; BIG-bench's train/validation split needs more than 16")


def _mutate(raw, split, row, key, value=None):
    if value is None:
        del raw["splits"][split][row][key]
    else:
        raw["splits"][split][row][key] = value


@pytest.mark.parametrize("name, split, row, key, value, message", [
    ("fever", "paper_dev", 3, "label", "NOT ENOUGH INFO", "split paper_dev row 3: unknown label 'NOT ENOUGH INFO' in field 'label'"),
    ("fever", "paper_test", 0, "claim", None, "split paper_test row 0: missing field 'claim'"),
    ("fever", "paper_dev", 1, "label", True, "split paper_dev row 1: unknown label True in field 'label'"),
    ("hotpotqa", "validation", 5, "answer", 42, "split validation row 5: field 'answer' must be a string, found int"),
    ("bios_gender", "dev", 7, "gender", 2, "split dev row 7: unknown label 2 in field 'gender'"),
    ("bios_profession", "dev", 9, "profession", 28, "split dev row 9: unknown label 28 in field 'profession'"),
    ("bios_profession", "dev", 2, "hard_text", None, "split dev row 2: missing field 'hard_text'"),
    ("truthfulqa", "validation", 4, "mc2_targets", {"choices": ["a"]},
     "split validation row 4: missing field 'mc2_targets.labels'"),
    ("truthfulqa", "validation", 0, "mc2_targets", {"choices": ["a"], "labels": ["yes"]},
     "split validation row 0: unknown label 'yes' in field 'mc2_targets.labels'"),
    ("bigbench_epistemic", "train", 6, "targets", ["neutral"], "split train row 6: unknown label 'neutral' in field 'targets'"),
    ("bigbench_epistemic", "validation", 2, "targets", ["entailment", "non-entailment"],
     "split validation row 2: field 'targets' must hold exactly 1 target, found 2"),
    ("bigbench_wikidata", "train", 11, "inputs", None, "split train row 11: missing field 'inputs'"),
])
def test_a_malformed_row_names_file_split_row_and_field_and_writes_nothing(
        tmp_path, llama_tokenizer, name, split, row, key, value, message):
    raw = read_json(DEMO / RAW_FILES[name])
    _mutate(raw, split, row, key, value)
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(raw))
    out = tmp_path / f"{name}.jsonl"
    with pytest.raises(LaserflowError) as err:
        prepare_dataset(name, path, out, answer_tokenizer=llama_tokenizer)
    assert str(err.value) == f"{path}: {message}"
    assert list(tmp_path.iterdir()) == [path]


def test_a_missing_split_or_task_json_example_field_is_named(tmp_path):
    raw = read_json(DEMO / "fever.json")
    del raw["splits"]["paper_test"]
    with pytest.raises(LaserflowError) as err:
        build_items("fever", raw, "fever.json")
    assert str(err.value) == "fever.json: missing split 'paper_test' (found: paper_dev)"
    task = read_json(DEMO / "bigbench_epistemic_task.json")
    del task["examples"][4]["input"]
    with pytest.raises(LaserflowError) as err:
        build_items("bigbench_epistemic", task, "task.json")
    assert str(err.value) == "task.json: example 4: missing field 'input'"


def test_size_mismatch_names_the_dataset_and_both_counts(tmp_path):
    out = tmp_path / "fever.jsonl"
    with pytest.raises(LaserflowError) as err:
        prepare_dataset("fever", DEMO / "fever.json", out, expected_items=13086)
    assert str(err.value) == (
        "dataset fever: expected 13086 items, found 82 (set size_mismatch: warn to continue anyway)")
    assert not out.exists()
    assert prepare_dataset("fever", DEMO / "fever.json", out, expected_items=13086, size_mismatch="warn") == 82
    assert prepare_dataset("counterfact", DEMO / "counterfact.json", tmp_path / "cf.jsonl", expected_items=360) == 360


def test_prepared_items_are_the_built_items(tmp_path):
    for name in ("fever", "bios_profession", "truthfulqa", "bigbench_wikidata"):
        out = tmp_path / f"{name}.jsonl"
        prepare_dataset(name, DEMO / RAW_FILES[name], out)
        assert read_jsonl(out) == demo(name)


def _hub_dir(root):
    """A local dataset repository laid out as on the hub: a config in README.md, one parquet file per split."""
    import pandas as pd

    rows = read_json(DEMO / "fever.json")["splits"]
    for split, split_rows in rows.items():
        (root / "v1.0").mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame([dict(row, id=number, evidence_wiki_url="x") for number, row in enumerate(split_rows)])
        frame.to_parquet(root / "v1.0" / f"{split}-00000-of-00001.parquet")
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: v1.0\n  data_files:\n"
        "  - split: paper_dev\n    path: v1.0/paper_dev-*\n  - split: paper_test\n    path: v1.0/paper_test-*\n---\n")
    return rows


def test_fetch_hub_dataset_writes_the_raw_splits_with_only_the_read_columns(tmp_path):
    rows = _hub_dir(tmp_path / "hub")
    info = replace(DATASETS["fever"], hub=str(tmp_path / "hub"))
    out = tmp_path / "raw" / "fever.json"
    # As the config names it: the hub id (here a local mirror) and revision; the catalog's config.
    fetch_configured("fever", {"hub": info.hub, "revision": "main"}, out)
    raw = read_json(out)
    assert raw["source"] == {"hub": str(tmp_path / "hub"), "config": "v1.0", "revision": "main"}
    assert raw["splits"] == rows
    assert build_items("fever", raw, str(out)) == demo("fever")
    assert sorted(path.name for path in out.parent.iterdir()) == ["fever.json"]  # no cache left behind
    with pytest.raises(LaserflowError) as err:
        fetch_hub_dataset(replace(info, splits=("paper_dev", "dev")), tmp_path / "raw" / "bad.json", "main")
    assert str(err.value).startswith(f"dataset {tmp_path / 'hub'}@main: Unknown split \"dev\"")
    assert not (tmp_path / "raw" / "bad.json").exists()


def test_an_unreachable_hub_names_the_dataset_and_the_local_alternative(tmp_path):
    code = (
        "from laserflow.cli import run_script\n"
        "from laserflow.data.catalog import DATASETS\n"
        "from laserflow.data.hub import fetch_hub_dataset\n"
        "class Job:\n    log = []\n    threads = 1\n"
        f"run_script(Job, lambda: fetch_hub_dataset(DATASETS['fever'], {str(tmp_path / 'fever.json')!r}, 'main'))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("laserflow: error: dataset EleutherAI/fever@main: the hub is unreachable (")
    assert line.endswith("); fetch it where the hub is reachable and point the dataset's 'local' key at the raw JSON")
    assert [path.name for path in tmp_path.iterdir() if path.name != "hf"] == []


def write_layouts(raw: dict, root: Path) -> dict[str, Path]:
    """A hub file's rows written in each local layout: per-split JSON Lines, per-split Parquet in
    two shards named as the hub names them, and a datasets save_to_disk folder."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    layouts = {layout: root / layout for layout in ("jsonl", "parquet", "save_to_disk")}
    for split, rows in raw["splits"].items():
        write_jsonl(layouts["jsonl"] / f"{split}.jsonl", rows)
        layouts["parquet"].mkdir(parents=True, exist_ok=True)
        for shard, part in enumerate((rows[:len(rows) // 2], rows[len(rows) // 2:])):
            pq.write_table(pa.Table.from_pylist(part), layouts["parquet"] / f"{split}-{shard:05d}-of-00002.parquet")
    datasets.DatasetDict({split: datasets.Dataset.from_list(rows) for split, rows in raw["splits"].items()}
                         ).save_to_disk(str(layouts["save_to_disk"]))
    return layouts


@pytest.mark.parametrize("name", sorted(RAW_FILES))
def test_local_copies_in_the_hubs_layouts_give_the_items_of_the_hub_rows(name, tmp_path):
    layouts = write_layouts(read_json(DEMO / RAW_FILES[name]), tmp_path)
    for layout, path in layouts.items():
        raw, files = read_raw(name, path)
        items = hotpotqa_items(raw, str(path), words_and_bos) if name == "hotpotqa" else build_items(name, raw, str(path))
        assert items == demo(name), layout
        # Every file read, with its sha256.
        assert files == {str(file): sha256_file(file) for file in sorted(path.rglob("*")) if file.is_file()}, layout


def test_preparing_a_local_copy_records_the_sha256_of_every_file_read(tmp_path):
    layouts = write_layouts(read_json(DEMO / "fever.json"), tmp_path)
    out, record = tmp_path / "fever.jsonl", tmp_path / "fever.source.json"
    assert prepare_dataset("fever", layouts["parquet"], out, source_path=record) == 82
    assert read_jsonl(out) == demo("fever")
    shards = [layouts["parquet"] / f"{split}-{shard:05d}-of-00002.parquet"
              for split in ("paper_dev", "paper_test") for shard in (0, 1)]
    assert read_json(record) == {"source": str(layouts["parquet"]),
                                 "files": {str(shard): sha256_file(shard) for shard in shards}}
    prepare_dataset("fever", DEMO / "fever.json", out, source_path=record)
    assert read_json(record)["files"] == {str(DEMO / "fever.json"): sha256_file(DEMO / "fever.json")}


def test_a_local_copy_in_no_known_layout_is_one_line(tmp_path):
    layouts = write_layouts(read_json(DEMO / "fever.json"), tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (layouts["jsonl"] / "paper_dev-00001-of-00002.parquet").write_bytes(
        (layouts["parquet"] / "paper_dev-00000-of-00002.parquet").read_bytes())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "paper_dev.parquet").write_text("not parquet")
    cases = [
        ("fever", empty, f"{empty}: no per-split *.jsonl or *.parquet files (e.g. validation.jsonl, "
                         "train-00000-of-00001.parquet) and no datasets save_to_disk folder (dataset_dict.json)"),
        ("fever", layouts["jsonl"], f"{layouts['jsonl']}: split paper_dev has both .jsonl and .parquet files; "
                                    "keep one format"),
        ("fever", layouts["save_to_disk"] / "paper_dev",
         f"{layouts['save_to_disk'] / 'paper_dev'}: a datasets save_to_disk folder of one split; save the "
         "DatasetDict of its splits (it writes dataset_dict.json)"),
        ("counterfact", layouts["jsonl"], f"{layouts['jsonl']}: a directory; dataset counterfact is read from one "
                                          "JSON file"),
    ]
    for name, path, message in cases:
        with pytest.raises(LaserflowError) as err:
            read_raw(name, path)
        assert str(err.value) == message
    with pytest.raises(LaserflowError) as err:
        read_raw("fever", tmp_path / "broken")
    assert str(err.value).startswith(f"{tmp_path / 'broken' / 'paper_dev.parquet'}: not a readable Parquet file (")
