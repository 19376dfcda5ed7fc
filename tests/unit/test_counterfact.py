"""CounterFact processing from ROME's raw schema."""

from __future__ import annotations

import json

import pytest

from laserflow.data.prepare import prepare_configured, prepare_dataset
from laserflow.data.counterfact import counterfact_items
from laserflow.io import LaserflowError, read_jsonl


def record(case_id, prompt, subject, true, paraphrases):
    return {
        "case_id": case_id,
        "pararel_idx": 100 + case_id,
        "requested_rewrite": {
            "prompt": prompt,
            "relation_id": "P103",
            "target_new": {"str": "English", "id": "Q1860"},
            "target_true": {"str": true, "id": "Q150"},
            "subject": subject,
        },
        "paraphrase_prompts": paraphrases,
        "neighborhood_prompts": ["The mother tongue of Léon Blum is"],
        "attribute_prompts": ["J. R. R. Tolkien is a native speaker of"],
        "generation_prompts": ["Danielle Darrieux's mother tongue is"],
    }


RAW = [
    record(0, "The mother tongue of {} is", "Danielle Darrieux", "French",
           ["Shayna does this. Danielle Darrieux, a native", "It was never released. Danielle Darrieux spoke the language"]),
    record(1, "{} is a professional", "Thierry Henry", "soccer",
           ["He left early. Thierry Henry plays ", "Thierry Henry's position is"]),
]


def test_items_are_record_major_with_a_leading_space_answer():
    items = counterfact_items(RAW, "raw.json")
    assert [(item["question"], item["answer"]) for item in items] == [
        ("The mother tongue of Danielle Darrieux is", " French"),
        ("Shayna does this. Danielle Darrieux, a native", " French"),
        ("It was never released. Danielle Darrieux spoke the language", " French"),
        ("Thierry Henry is a professional", " soccer"),
        ("He left early. Thierry Henry plays ", " soccer"),  # not stripped, as in the original
        ("Thierry Henry's position is", " soccer"),
    ]
    assert [item["index"] for item in items] == list(range(6))
    assert [item["record"] for item in items] == [0, 0, 0, 1, 1, 1]


def test_prepare_writes_json_lines_and_checks_the_expected_size(tmp_path):
    raw = tmp_path / "counterfact.json"
    raw.write_text(json.dumps(RAW))
    out = tmp_path / "counterfact.jsonl"
    assert prepare_dataset("counterfact", raw, out, expected_items=6) == 6
    assert [row["question"] for row in read_jsonl(out)][3] == "Thierry Henry is a professional"
    other = tmp_path / "other.jsonl"
    url_source = {"url": "https://rome.baulab.info/data/dsets/counterfact.json"}  # the catalog's size: 65,757
    with pytest.raises(LaserflowError) as err:
        prepare_configured("counterfact", url_source, raw, other)
    assert str(err.value) == (
        "dataset counterfact: expected 65757 items, found 6 (set size_mismatch: warn to continue anyway)"
    )
    assert not other.exists()
    assert prepare_configured("counterfact", url_source | {"size_mismatch": "warn"}, raw, other) == 6
    assert prepare_configured("counterfact", {"local": str(raw)}, raw, other) == 6  # a local file has no known size


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["requested_rewrite"].pop("subject"), "record 1: missing field 'requested_rewrite.subject'"),
        (lambda r: r["requested_rewrite"]["target_true"].pop("str"),
         "record 1: missing field 'requested_rewrite.target_true.str'"),
        (lambda r: r["paraphrase_prompts"].pop(), "record 1: field 'paraphrase_prompts' must hold exactly 2 prompts"),
        (lambda r: r["requested_rewrite"].update(prompt="{} is a professional {0.__class__}"),
         "record 1: field 'requested_rewrite.prompt' needs exactly one '{}' and no other brace"),
        (lambda r: r["paraphrase_prompts"].__setitem__(0, 7), "record 1: field 'paraphrase_prompts' must hold strings"),
        (lambda r: r["requested_rewrite"].update(subject=None),
         "record 1: field 'requested_rewrite.subject' must be a string, found NoneType"),
    ],
)
def test_malformed_record_names_file_record_and_field(tmp_path, mutate, message):
    raw_records = json.loads(json.dumps(RAW))
    mutate(raw_records[1])
    raw = tmp_path / "bad.json"
    raw.write_text(json.dumps(raw_records))
    out = tmp_path / "out.jsonl"
    with pytest.raises(LaserflowError) as err:
        prepare_dataset("counterfact", raw, out)
    assert str(err.value) == f"{raw}: {message}"
    assert not out.exists() and list(tmp_path.iterdir()) == [raw]


def test_a_local_file_with_a_sha256_is_checked_before_it_is_read(tmp_path):
    raw = tmp_path / "counterfact.json"
    raw.write_text(json.dumps(RAW))
    out = tmp_path / "counterfact.jsonl"
    import hashlib

    found = hashlib.sha256(raw.read_bytes()).hexdigest()
    with pytest.raises(LaserflowError) as err:
        prepare_configured("counterfact", {"local": str(raw), "sha256": "0" * 64}, raw, out)
    assert str(err.value) == (f"{raw}: sha256 mismatch: datasets.counterfact.sha256 is {'0' * 64}, "
                              f"the file's is {found}")
    assert not out.exists()
    assert prepare_configured("counterfact", {"local": str(raw), "sha256": found}, raw, out) == 6


def test_dataset_bytes_that_are_not_utf8_are_one_line(tmp_path):
    raw = tmp_path / "counterfact.json"
    raw.write_bytes(json.dumps(RAW).replace("Thierry", "Thi\u00e9rry").encode("latin-1"))
    out = tmp_path / "counterfact.jsonl"
    offset = raw.read_bytes().index(b"\xe9")
    with pytest.raises(LaserflowError) as err:
        prepare_dataset("counterfact", raw, out)
    assert str(err.value) == f"{raw}: not UTF-8 text (byte 0xe9 at offset {offset})"
    assert not out.exists()


def test_the_demo_file_gives_three_items_per_record(demo_items):
    assert len(demo_items) == 360
    assert all(item["answer"].startswith(" ") for item in demo_items)
