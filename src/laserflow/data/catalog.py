"""The paper's eight datasets: what each item holds and how it is scored.

Every processed dataset is JSON Lines, one item per line in the protocol's order, with
``index`` (its position) and ``question`` (the text the prompt is built from), and either
``answer`` (the gold string of an open-ended item) or ``label`` (an index into ``choices``).
A few datasets add fields their prompts need (TruthfulQA's ``statement``) or that trace an item
to its source (``split``, ``record``).

Tasks:
- ``fact``: CounterFact; next-token (GPT-J, Phi), generation (Llama) or one mask (RoBERTa).
- ``open``: generation with containment scoring (RoBERTa: argmax at appended masks).
- ``compare``: two labels; correct when the gold label's log-prob is strictly the greater.
- ``choice``: argmax over the choices (summed log-probs when a choice is several tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..io import LaserflowError

@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str  # the paper's name, for tables and figures
    task: str
    choices: tuple[str, ...] = ()  # label strings, indexed by an item's ``label``
    max_new_tokens: int = 10  # generation length of open-ended items
    hub: str | None = None  # Hugging Face dataset id of the real source
    hub_config: str | None = None
    splits: tuple[str, ...] = ()  # source splits, in the order items are taken
    columns: tuple[str, ...] = ()  # source columns the preparation reads
    expected_items: int | None = None  # the real source's processed size, where known (checked)

    @property
    def is_classification(self) -> bool:
        return self.task in ("compare", "choice")


PROFESSIONS = ("journalist", "poet", "composer", "model", "teacher", "architect", "painter", "professor")

DATASETS = {
    info.name: info
    for info in (
        DatasetInfo("counterfact", "CounterFact", "fact", expected_items=65_757),
        DatasetInfo("hotpotqa", "HotPotQA", "open", max_new_tokens=15, hub="hotpot_qa", hub_config="fullwiki",
                    splits=("train", "validation"), columns=("question", "answer")),
        DatasetInfo("fever", "FEVER", "compare", choices=("false", "true"), hub="EleutherAI/fever",
                    hub_config="v1.0", splits=("paper_dev", "paper_test"), columns=("claim", "label"),
                    expected_items=13_086),
        DatasetInfo("bios_gender", "Bios Gender", "compare", choices=("male", "female"),
                    hub="LabHC/bias_in_bios", splits=("dev",), columns=("hard_text", "gender"),
                    expected_items=39_642),
        DatasetInfo("bios_profession", "Bios Profession", "choice", choices=PROFESSIONS,
                    hub="LabHC/bias_in_bios", splits=("dev",), columns=("hard_text", "profession")),
        DatasetInfo("truthfulqa", "TruthfulQA", "compare", choices=("false", "true"), hub="truthful_qa",
                    hub_config="multiple_choice", splits=("validation",), columns=("question", "mc2_targets"),
                    expected_items=5_882),
        DatasetInfo("bigbench_epistemic", "BigBench-Epistemic Reasoning", "choice",
                    choices=("entailment", "non-entailment"), hub="tasksource/bigbench",
                    hub_config="epistemic_reasoning", splits=("validation", "train"), columns=("inputs", "targets"),
                    expected_items=2_000),
        DatasetInfo("bigbench_wikidata", "BigBench-WikidataQA", "open", hub="tasksource/bigbench",
                    hub_config="qa_wikidata", splits=("validation", "train"), columns=("inputs", "targets")),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise LaserflowError(f"unknown dataset '{name}'; valid: {', '.join(DATASETS)}") from None
