"""Configuration: reading (layered files), schema validation and the semantic checks the schema cannot express."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from .families import family_by_name
from .io import LaserflowError
from .paths import run_key
from .sweep import cells, export_edits, levels, layers, model_info, selected_edits

SCHEMA = Path(str(resources.files("laserflow") / "schemas" / "config.schema.yaml"))


def read_yaml(path: str | Path) -> dict:
    """One config file's mapping; a YAML syntax error names the file and line."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LaserflowError(f"{path}: malformed YAML{where}") from None
    if not isinstance(config, dict):
        raise LaserflowError(f"{path}: the config must be a mapping")
    return config


def load_config(*paths: str | Path) -> dict:
    """Read config files as ``snakemake --configfile A B`` does (B's keys update A's, mappings
    merged key by key), then validate the result (with schema defaults filled in)."""
    from snakemake.utils import update_config

    config: dict = {}
    for path in paths:
        update_config(config, read_yaml(path))
    validate(config, source=" + ".join(map(str, paths)))
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


def check(config: dict, source: str = "config") -> None:
    """Semantic checks the schema cannot express: cells, τ per family, layer range, levels."""
    check_cells(config, source)
    try:
        levels(config)
    except LaserflowError as err:
        raise LaserflowError(f"{source}: sweep: {err}") from None
    for name in dict.fromkeys(model for model, _ in cells(config)):
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
    check_export(config, source)


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


def check_cells(config: dict, source: str = "config") -> None:
    """Each ``cells`` entry names a configured model and datasets, none twice."""
    for model, datasets in config.get("cells", {}).items():
        if model not in config["models"]:
            raise LaserflowError(f"{source}: cells.{model}: '{model}' is not a configured model")
        for dataset in datasets:
            if dataset not in config["datasets"]:
                raise LaserflowError(f"{source}: cells.{model}: '{dataset}' is not a configured dataset")
        if len(set(datasets)) != len(datasets):
            raise LaserflowError(f"{source}: cells.{model}: a dataset is listed twice")


def check_selected(config: dict, source: str = "config") -> None:
    """Each ``selected`` entry names a configured model and dataset, a τ of the model's family and
    one of its layers, and lists no configuration twice."""
    check_edit_lists(config, source, "selected", config.get("selected", {}), selected_edits)


def check_export(config: dict, source: str = "config") -> None:
    """Each ``export.edits`` list is checked as ``selected`` entries are."""
    check_edit_lists(config, source, "export.edits", config.get("export", {}).get("edits", {}), export_edits)


def check_edit_lists(config: dict, source: str, section: str, lists: dict, edits_of) -> None:
    """``lists`` (model -> dataset -> [{tau, layer, rate | rho}]) name configured models and
    datasets, τs of each model's family and its layers, and no configuration twice per list."""
    for model, entries_of in lists.items():
        if model not in config["models"]:
            raise LaserflowError(f"{source}: {section}.{model}: '{model}' is not a configured model")
        info = model_info(config, model)
        family = family_by_name(info.family)
        for dataset, entries in entries_of.items():
            where = f"{source}: {section}.{model}.{dataset}"
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
            keys = [tuple(run_key(edit).values()) for edit in edits_of(config, model, dataset)]
            if len(set(keys)) != len(keys):
                raise LaserflowError(f"{where}: a configuration is listed twice")


def main(argv: list[str] | None = None) -> int:
    """`python -m laserflow.config FILE [FILE...]`: check a config before a long run.

    Several files are layered as Snakemake's ``--configfile`` layers them. Snakemake reports a YAML
    syntax error without the file or line; this names both.
    """
    import sys

    paths = sys.argv[1:] if argv is None else argv
    try:
        load_config(*paths)
    except LaserflowError as err:
        print(f"laserflow: error: {err}", file=sys.stderr)
        return 1
    print(f"{' + '.join(paths)}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
