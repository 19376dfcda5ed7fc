"""Configuration: schema validation, semantic checks and expansion of the sweep grid."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .families import family_by_name
from .io import LaserflowError
from .edits import Edit, Level, level_label
from .tiny import TinySpec

SCHEMA = Path(str(resources.files("laserflow") / "schemas" / "config.schema.yaml"))


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML config (with schema defaults filled in)."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LaserflowError(f"{path}: malformed YAML{where}") from None
    validate(config, source=str(path))
    return config


def validate(config: dict, source: str = "config") -> None:
    """Schema validation (then filling defaults) and the semantic checks; one-line errors."""
    from snakemake.utils import validate as fill_defaults

    if not isinstance(config, dict):
        raise LaserflowError(f"{source}: the config must be a mapping")
    schema_error = first_schema_error(config)
    if schema_error:
        raise LaserflowError(f"{source}: {schema_error}")
    fill_defaults(config, str(SCHEMA), set_default=True)
    check(config, source)


def first_schema_error(config: dict) -> str | None:
    """The most relevant schema violation as 'key <path>: <problem>', or None."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = yaml.safe_load(SCHEMA.read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "oneOf" and "description" in error.schema:
        # The schema's description says which combination of keys is allowed.
        message = " ".join(error.schema["description"].split())
    return f"key '{where}': {message}"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    layers: int


def model_info(config: dict, name: str) -> ModelInfo:
    spec = config["models"][name]
    if "tiny" in spec:
        tiny = tiny_spec(spec)
        return ModelInfo(name, tiny.family, tiny.layers)
    return ModelInfo(name, spec["family"], spec["layers"])


def tiny_spec(spec: dict) -> TinySpec:
    defaults = TinySpec(family=spec["tiny"]["family"])
    return TinySpec(**{key: spec["tiny"].get(key, getattr(defaults, key)) for key in TinySpec.__dataclass_fields__})


def levels(config: dict) -> list[Level]:
    sweep = config["sweep"]
    if "rates" in sweep:
        return [Level(rate=float(rate)) for rate in sweep["rates"]]
    return [Level(rho=float(rho)) for rho in sweep["rhos"]]


def layers(config: dict, model: str) -> list[int]:
    chosen = config["sweep"].get("layers", "all")
    return list(range(model_info(config, model).layers)) if chosen == "all" else list(chosen)


def selected_edits(config: dict, model: str, dataset: str) -> list[Edit] | None:
    """The configurations ``selected`` lists for one (model, dataset), in its order; None if none."""
    entries = config.get("selected", {}).get(model, {}).get(dataset)
    if entries is None:
        return None
    return [Edit("laser", entry["tau"], entry["layer"],
                 Level(rate=float(entry["rate"])) if "rate" in entry else Level(rho=float(entry["rho"])))
            for entry in entries]


def edits(config: dict, model: str, dataset: str) -> list[Edit]:
    """Every single-edit configuration of one (model, dataset): the ones ``selected`` lists for it
    (artifact evaluation), otherwise the sweep grid in the original's sweep order.

    The original loops layers from the last down, then τ in the given order, then rates reversed
    (9.95 first); the first configuration wins remaining selection ties.
    """
    chosen = selected_edits(config, model, dataset)
    if chosen is not None:
        return chosen
    out = []
    for intervention in config["sweep"].get("interventions", ["laser"]):
        for layer in sorted(layers(config, model), reverse=True):
            for tau in config["sweep"]["taus"]:
                if intervention == "zero":
                    out.append(Edit(intervention, tau, layer, None))
                    continue
                for level in reversed(levels(config)):
                    out.append(Edit(intervention, tau, layer, level))
    return out


def run_key(edit: Edit) -> dict:
    """The wildcard values of one configuration's target."""
    return {"intervention": edit.intervention, "tau": edit.tau, "layer": edit.layer, "level": level_label(edit.level)}


def check(config: dict, source: str = "config") -> None:
    """Semantic checks the schema cannot express: τ per family, layer range, levels."""
    try:
        levels(config)
    except LaserflowError as err:
        raise LaserflowError(f"{source}: sweep: {err}") from None
    for name in config["models"]:
        info = model_info(config, name)
        family = family_by_name(info.family)
        for tau in config["sweep"]["taus"]:
            if tau not in family.taus:
                raise LaserflowError(
                    f"{source}: sweep.taus: '{tau}' is not a matrix type of model '{name}' "
                    f"({info.family}); valid: {', '.join(family.taus)}"
                )
        for layer in layers(config, name):
            if layer >= info.layers:
                raise LaserflowError(
                    f"{source}: sweep.layers: layer {layer} is beyond model '{name}' "
                    f"(layers 0..{info.layers - 1})"
                )
    check_datasets(config, source)
    check_selected(config, source)


def check_datasets(config: dict, source: str = "config") -> None:
    """HotPotQA names the configured model whose tokenizer filters its answers."""
    for name, spec in config["datasets"].items():
        tokenizer = spec.get("answer_tokenizer")
        if name == "hotpotqa" and tokenizer is None:
            raise LaserflowError(
                f"{source}: datasets.hotpotqa.answer_tokenizer: required: the configured model whose "
                "tokenizer filters answers to at most 15 ids (the original uses Llama-2's for every model)"
            )
        if tokenizer is not None and tokenizer not in config["models"]:
            raise LaserflowError(
                f"{source}: datasets.{name}.answer_tokenizer: '{tokenizer}' is not a configured model"
            )


def check_selected(config: dict, source: str = "config") -> None:
    """Each ``selected`` entry names a configured model and dataset, a τ of the model's family and
    one of its layers, and lists no configuration twice."""
    for model, cells in config.get("selected", {}).items():
        if model not in config["models"]:
            raise LaserflowError(f"{source}: selected.{model}: '{model}' is not a configured model")
        info = model_info(config, model)
        family = family_by_name(info.family)
        for dataset, entries in cells.items():
            where = f"{source}: selected.{model}.{dataset}"
            if dataset not in config["datasets"]:
                raise LaserflowError(f"{where}: '{dataset}' is not a configured dataset")
            for number, entry in enumerate(entries):
                if entry["tau"] not in family.taus:
                    raise LaserflowError(
                        f"{where}.{number}: '{entry['tau']}' is not a matrix type of model '{model}' "
                        f"({info.family}); valid: {', '.join(family.taus)}"
                    )
                if entry["layer"] >= info.layers:
                    raise LaserflowError(
                        f"{where}.{number}: layer {entry['layer']} is beyond model '{model}' "
                        f"(layers 0..{info.layers - 1})"
                    )
            keys = [tuple(run_key(edit).values()) for edit in selected_edits(config, model, dataset)]
            if len(set(keys)) != len(keys):
                raise LaserflowError(f"{where}: a configuration is listed twice")


def main(argv: list[str] | None = None) -> int:
    """`python -m laserflow.config FILE...`: check config files before a long run.

    Snakemake reports a YAML syntax error without the file or line; this names both.
    """
    import sys

    paths = sys.argv[1:] if argv is None else argv
    status = 0
    for path in paths:
        try:
            load_config(path)
            print(f"{path}: ok")
        except LaserflowError as err:
            print(f"laserflow: error: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
