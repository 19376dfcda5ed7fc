"""The evaluation job contract: every setting a job needs besides its files, built once from the
config for a (model, dataset) and carried as one value from the rule to the job, and the job's
files (an evaluation's, or a robustness job's: ``laserflow.robustness``).

A rule's ``params`` hold ``EvaluationSettings.from_config(...).as_dict()`` (plain values, so
Snakemake reruns a job exactly when one of its settings changes); the job rebuilds the object
with ``from_dict``. Adding a switch means a schema entry and a field here. No torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .io import LaserflowError

GENERATION_MATCHES = ("full_text", "continuation")
MASKED_LOSSES = ("original", "corrected")
TRUTHFULQA_PROMPTS = ("original", "corrected")
SVD_MODES = ("exact", "randomized")
PARTS = ("all", "validation")  # which items a job scores


@dataclass(frozen=True)
class ScoringOptions:
    """How items are scored: batching and the fidelity switches (each recorded in the summary)."""

    batch_size: int | str = "auto"
    max_new_tokens: int | None = None  # None: the dataset's (15 for HotPotQA, 10 otherwise)
    generation_match: str = "full_text"
    masked_loss: str = "original"
    truthfulqa_prompt: str = "original"
    shared_prompt: bool = True  # causal models: a choice item's prompt runs once (``forward.pack``)
    show_progress: bool = True

    def __post_init__(self):
        for key, valid in (("generation_match", GENERATION_MATCHES), ("masked_loss", MASKED_LOSSES),
                           ("truthfulqa_prompt", TRUTHFULQA_PROMPTS)):
            if getattr(self, key) not in valid:
                raise LaserflowError(f"{key} '{getattr(self, key)}' is not one of {', '.join(valid)}")


@dataclass(frozen=True)
class SvdSettings:
    """``exact`` truncates the cached SVD; ``randomized`` replays the original's seeded svd_lowrank."""

    mode: str = "exact"
    seed: int = 0

    def __post_init__(self):
        if self.mode not in SVD_MODES:
            raise LaserflowError(f"unknown svd mode '{self.mode}'; valid: {', '.join(SVD_MODES)}")


@dataclass(frozen=True)
class EvaluationSettings:
    model: str
    dataset: str
    dtype: str = "float32"
    device: str = "cpu"
    fused_gelu: bool = True
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    svd: SvdSettings | None = None  # None for jobs without a LASER edit
    val_fraction: float = 0.2
    part: str = "all"  # "validation": score the validation part only (a search's configurations)
    model_source: dict = field(default_factory=dict)  # the config's spec, copied into provenance
    dataset_source: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.part not in PARTS:
            raise LaserflowError(f"part '{self.part}' is not one of {', '.join(PARTS)}")

    @classmethod
    def from_config(cls, config: dict, model: str, dataset: str, uses_svd: bool,
                    part: str = "all") -> "EvaluationSettings":
        """The settings of one (model, dataset) job; ``uses_svd`` when it runs a LASER edit (the
        SVD settings then count, and only then: changing them reruns no other job); ``part`` the
        items it scores."""
        spec, evaluation = config["models"][model], config["evaluation"]
        return cls(
            model=model,
            dataset=dataset,
            dtype=spec.get("dtype", "float32"),
            device=evaluation["device"],
            fused_gelu=evaluation["fused_gelu"],
            scoring=ScoringOptions(
                batch_size=spec.get("batch_size", evaluation["batch_size"]),
                max_new_tokens=evaluation.get("max_new_tokens"),
                generation_match=evaluation["generation_match"],
                masked_loss=evaluation["masked_loss"],
                truthfulqa_prompt=evaluation["truthfulqa_prompt"],
                shared_prompt=evaluation["shared_prompt"],
            ),
            svd=SvdSettings(**config["svd"]) if uses_svd else None,
            val_fraction=config["selection"]["val_fraction"],
            part=part,
            model_source=spec,
            dataset_source=config["datasets"][dataset],
        )

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EvaluationSettings":
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise LaserflowError(f"evaluation settings: unknown key '{unknown[0]}'")
        return cls(**values | {
            "scoring": ScoringOptions(**values.get("scoring", {})),
            "svd": SvdSettings(**values["svd"]) if values.get("svd") else None,
        })


@dataclass(frozen=True)
class EvaluationPaths:
    """The files of one evaluation: what it reads and the summary and records it writes."""

    model: str
    dataset: str
    summary: str
    records: str
    manifest: str | None = None
    svd: tuple[str, ...] = ()
    source_record: str | None = None  # the dataset's raw source and file hashes (laserflow.data.prepare)

    @classmethod
    def from_job(cls, inputs, summary: str, records: str, svd=None) -> "EvaluationPaths":
        """From a Snakemake job's named input (model, dataset, manifest, the dataset's source record
        and its SVDs unless given)."""
        return cls(model=inputs.model, dataset=inputs.dataset, summary=summary, records=records,
                   manifest=inputs.manifest, svd=tuple(getattr(inputs, "svd", ()) if svd is None else svd),
                   source_record=getattr(inputs, "source_record", None))


def job_values(settings: dict, runs: list[tuple[dict, EvaluationPaths]]) -> dict:
    """An evaluation job as plain values: its settings (a dict) and, per evaluation it runs, the
    target's wildcards (``laserflow.paths.run_key``; none for the base model) and files."""
    return {"settings": settings, "runs": [{"key": dict(key), "paths": asdict(paths)} for key, paths in runs]}


@dataclass(frozen=True)
class RobustnessPaths:
    """The files of one robustness job: the cell's selection (and its runs, for top-k), the
    model, the dataset, the cached exact SVDs, and the summary and records it writes."""

    model: str
    dataset: str
    selection: str
    summary: str
    records: str
    manifest: str | None = None
    source_record: str | None = None
    runs: tuple[str, ...] = ()
    svd: tuple[str, ...] = ()

    @classmethod
    def from_job(cls, inputs, outputs) -> "RobustnessPaths":
        """From a Snakemake job's named input and output."""
        return cls(model=inputs.model, dataset=inputs.dataset, selection=inputs.selection, summary=outputs.summary,
                   records=outputs.records, manifest=inputs.manifest, source_record=inputs.source_record,
                   runs=tuple(inputs.runs), svd=tuple(inputs.svd))

    def job_values(self, settings: dict, draws: int, top_k: int) -> dict:
        """A robustness job as plain values (``laserflow.robustness.run_job``)."""
        return {"settings": settings, "draws": draws, "top_k": top_k, "paths": asdict(self)}
