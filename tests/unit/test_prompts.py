"""Golden prompt strings per dataset and family, as the original scripts build them."""

from __future__ import annotations

import pytest

from laserflow.data.catalog import dataset_info
from laserflow.families import family_by_name
from laserflow.models import load_model
from laserflow.prompts import build_request
from laserflow.settings import ScoringOptions

OPTIONS = ScoringOptions()


def request(dataset, family, item, tokenizer=None, options=OPTIONS):
    return build_request(dataset_info(dataset), family_by_name(family), tokenizer, item, options)


@pytest.mark.parametrize("claim, joint", [
    ("Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.", " "),
    ("Is Damon Albarn a singer?", " "),
    ("  Roman Atwood is a content creator ", ". "),
])
def test_fever_prompt(claim, joint):
    expected = "Consider the following claim: " + claim.strip() + joint + "Is this claim true or false. The claim is"
    item = {"index": 0, "question": claim, "label": 1}
    for family in ("gptj", "llama"):
        got = request("fever", family, item)
        assert (got.method, got.prompt, got.choices, got.gold, got.strict) == \
            ("labels", expected, ("false", "true"), 1, True)
    assert request("fever", "roberta", item).prompt == expected + " <mask>"


def test_truthfulqa_prompt_keeps_the_missing_space_unless_corrected(sample_items):
    item = sample_items["truthfulqa"][0]
    original = request("truthfulqa", "gptj", item).prompt
    assert original == ("What happens if you eat watermelon seeds? Nothing happens.Is this statement true or false? "
                        "This statement is")
    corrected = request("truthfulqa", "llama", item, options=ScoringOptions(truthfulqa_prompt="corrected")).prompt
    assert corrected == original.replace("happens.Is", "happens. Is")
    ending = sample_items["truthfulqa"][1]  # the statement already ends with "."
    assert request("truthfulqa", "roberta", ending).prompt == (
        "What happens if you eat watermelon seeds? You grow watermelons in your stomach.Is this statement true or "
        "false? This statement is <mask>")


def test_bios_prompts_causal(sample_items):
    item = sample_items["bios_gender"][1]  # no final period
    text = "Marc is a poet based in Lyon. He has worked on projects for twenty years and teaches a weekly class"
    assert request("bios_gender", "gptj", item).prompt == (
        f"Consider the following text: {text}. Is the person in this text a male or female? "
        "The gender of this person is")
    assert request("bios_profession", "llama", item).prompt == (
        f"Consider the following text: {text}. What is the profession of the person in this text? "
        "The profession of this person is")
    profession = request("bios_profession", "gptj", sample_items["bios_profession"][0])
    assert (profession.method, profession.gold, profession.strict) == ("labels", 6, False)
    assert profession.choices[6] == "painter"


def test_roberta_bios_prompts_keep_the_last_50_tokens(tiny_models):
    _, tokenizer, _ = load_model(tiny_models["roberta"])
    words = " ".join(f"word{i}" for i in range(80)) + "."
    item = {"index": 0, "question": words, "label": 0}
    ids = tokenizer(words, add_special_tokens=False).input_ids
    assert len(ids) > 50
    kept = tokenizer.decode(ids[-50:]).strip()
    assert request("bios_gender", "roberta", item, tokenizer).prompt == (
        f"Consider the following text: {kept} Is the person in this text a male or female? This person is <mask>.")
    assert request("bios_profession", "roberta", item, tokenizer).prompt == (
        f"Consider the following text: {kept} The profession of the person in the text is called <mask>.")


def test_hotpotqa_and_wikidata_prompts(sample_items):
    first, second = sample_items["hotpotqa"][0], sample_items["hotpotqa"][1]
    got = request("hotpotqa", "gptj", first)
    assert (got.method, got.prompt, got.continuation, got.answer) == (
        "generation", "Which magazine was started first, Arthur's Magazine or First for Women? The answer is",
        " Arthur's Magazine", "Arthur's Magazine")
    assert request("hotpotqa", "llama", second).prompt == second["question"] + " The answer is"
    assert request("hotpotqa", "roberta", second).method == "mask_fill"
    wikidata = request("bigbench_wikidata", "llama", sample_items["bigbench_wikidata"][0])
    assert (wikidata.method, wikidata.prompt, wikidata.continuation) == ("generation", "The capital of France is", " Paris")


def test_counterfact_methods_per_family():
    item = {"index": 0, "question": "Thierry Henry plays ", "answer": " soccer"}
    assert request("counterfact", "gptj", item).method == "next_token"
    assert request("counterfact", "phi", item).method == "next_token"
    assert request("counterfact", "llama", item).method == "generation"
    roberta = request("counterfact", "roberta", item)
    assert (roberta.method, roberta.prompt) == ("mask_token", "Thierry Henry plays <mask>.")


def test_epistemic_is_a_choice_among_two_words(tiny_models, sample_items):
    item = sample_items["bigbench_epistemic"][1]
    _, llama_tokenizer, _ = load_model(tiny_models["llama"])
    # One token per choice (the tiny Llama's metaspace words): compared at the last position.
    got = request("bigbench_epistemic", "llama", item, llama_tokenizer)
    assert (got.method, got.prompt, got.gold, got.strict) == ("labels", item["question"], 1, False)
    # RoBERTa always sums the masked choice tokens, as its original script does.
    _, roberta_tokenizer, _ = load_model(tiny_models["roberta"])
    assert request("bigbench_epistemic", "roberta", item, roberta_tokenizer).method == "sequences"
