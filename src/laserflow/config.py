"""Configuration: reading (layered files), schema validation and the semantic checks the schema cannot express."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from .families import family_by_name
from .edits import Level
from .io import LaserflowError, read_text
from .paths import run_key
from .sweep import cells, levels, layers, model_info, selected_edits

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")

SCHEMA = Path(str(resources.files("laserflow") / "schemas" / "config.schema.yaml"))


def read_yaml(path: str | Path) -> dict:
    """One config file's mapping; a missing or unreadable file, bytes that are not UTF-8 and a YAML
    syntax error are one line naming the file (and line)."""
    if str(path) == "-":
        raise LaserflowError("-: a config is read from a file, not from standard input; name the file")
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise LaserflowError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LaserflowError(f"{path}: a directory, not a config file") from None
    except OSError as err:
        raise LaserflowError(f"{path}: cannot be read ({err.strerror})") from None
    try:
        config = yaml.safe_load(text)
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
    """Semantic checks the schema cannot express: cells, τ per family, layer range, levels, the
    evaluation device."""
    check_cells(config, source)
    check_sweep(config, source)
    device = config["evaluation"]["device"]
    if not DEVICE.fullmatch(device):
        raise LaserflowError(f"{source}: evaluation.device: '{device}' is not one of auto, cpu, cuda, cuda:N")
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


def check_level(value: float, kind: str, where: str) -> None:
    """A level's file-name label reads back as exactly its value (rate 9.9999999 would be labelled
    rate10, rate 0.00001 rate1e-05)."""
    level = Level(**{kind: float(value)})
    try:
        exact = Level.parse(level.label) == level
    except LaserflowError:
        exact = False
    if not exact:
        label = f"{kind}{float(value):g}"
        raise LaserflowError(f"{where}: {kind} {value!r} has no exact file-name label (it would be '{label}'); "
                             f"use a plain decimal of at most 6 significant digits")


def check_sweep(config: dict, source: str = "config") -> None:
    """Each level has an exact label, and no list of the sweep names a value twice."""
    sweep = config["sweep"]
    try:
        levels(config)
    except LaserflowError as err:
        raise LaserflowError(f"{source}: sweep: {err}") from None
    kind = "rate" if "rates" in sweep else "rho"
    for value in sweep[kind + "s"]:
        check_level(value, kind, f"{source}: sweep.{kind}s")
    for key in ("interventions", "taus", "layers", "rates", "rhos"):
        values = sweep.get(key)
        if isinstance(values, list):
            seen = set()
            for value in values:
                if value in seen:
                    raise LaserflowError(f"{source}: sweep.{key}: {value!r} is listed twice")
                seen.add(value)


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
    for model, entries_of in config.get("selected", {}).items():
        if model not in config["models"]:
            raise LaserflowError(f"{source}: selected.{model}: '{model}' is not a configured model")
        info = model_info(config, model)
        family = family_by_name(info.family)
        for dataset, entries in entries_of.items():
            where = f"{source}: selected.{model}.{dataset}"
            if dataset not in config["datasets"]:
                raise LaserflowError(f"{where}: '{dataset}' is not a configured dataset")
            for number, entry in enumerate(entries):
                kind = "rate" if "rate" in entry else "rho"
                check_level(entry[kind], kind, f"{where}.{number}")
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
    """`python -m laserflow.config FILE [FILE...]`: check a config before a long run.

    Several files are layered as Snakemake's ``--configfile`` layers them. Snakemake reports a YAML
    syntax error without the file or line; this names both.
    """
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m laserflow.config CONFIG [CONFIG ...]", file=sys.stderr)
        return 2
    try:
        load_config(*paths)
    except LaserflowError as err:
        print(f"laserflow: error: {err}", file=sys.stderr)
        return 1
    print(f"{' + '.join(paths)}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
