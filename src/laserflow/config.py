"""Configuration: reading (layered files), schema validation and the semantic checks the schema cannot express."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from .edits import Level
from .families import Family, family_by_name
from .io import LaserflowError, read_text
from .shapes import matrix_shapes, model_widths
from .sweep import (ComposePlan, ModelInfo, analysis_edit, block_cells, cells, edits, export_edits, grid, grid_key,
                    layers, levels, model_info, selected_edits)

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
    if error.validator in ("oneOf", "not") and "description" in error.schema:
        # The schema's description says which combination of keys is allowed.
        message = " ".join(error.schema["description"].split())
    return f"key '{where}': {message}"


def check(config: dict, source: str = "config") -> None:
    """Semantic checks the schema cannot express: cells, each model's grid (τ per family, layer
    range, levels with exact labels, no value twice), the evaluation device, datasets, selected
    entries and the blocks' cells."""
    check_cell_map(config, "cells", config.get("cells", {}), source)
    device = config["evaluation"]["device"]
    if not DEVICE.fullmatch(device):
        raise LaserflowError(f"{source}: evaluation.device: '{device}' is not one of auto, cpu, cuda, cuda:N")
    for name in dict.fromkeys(model for model, _ in cells(config)):
        check_sweep(config, name, source)
        check_matrices(config, name, f"{source}: {grid_key(config, name, 'taus')}", grid(config, name)["taus"],
                       f"{source}: {grid_key(config, name, 'layers')}", layers(config, name))
    check_datasets(config, source)
    check_selected(config, source)
    check_robustness(config, source)
    check_compose(config, source)
    check_analysis(config, source)
    check_export(config, source)


def check_tau(where: str, tau: str, info: ModelInfo, family: Family) -> None:
    if tau not in family.taus:
        raise LaserflowError(f"{where}: '{tau}' is not a matrix type of model '{info.name}' ({info.family}); "
                             f"valid: {', '.join(family.taus)}")


def check_layer(where: str, layer: int, info: ModelInfo) -> None:
    if layer >= info.layers:
        raise LaserflowError(f"{where}: layer {layer} is beyond model '{info.name}' (layers 0..{info.layers - 1})")


def check_matrices(config: dict, model: str, taus_key: str, taus, layers_key: str, layer_list) -> None:
    """Each τ is a matrix type of the model's family and each layer one of its layers; the error
    names the key (``taus_key``, ``layers_key``: "<file>: <key>")."""
    info = model_info(config, model)
    family = family_by_name(info.family)
    for tau in taus:
        check_tau(taus_key, tau, info, family)
    for layer in layer_list:
        check_layer(layers_key, layer, info)


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


def check_sweep(config: dict, model: str, source: str = "config") -> None:
    """A model's grid: each level has an exact label, and no list names a value twice."""
    chosen = grid(config, model)
    try:
        levels(config, model)
    except LaserflowError as err:
        raise LaserflowError(f"{source}: {grid_key(config, model, 'rates' if 'rates' in chosen else 'rhos')}: "
                             f"{err}") from None
    kind = "rate" if "rates" in chosen else "rho"
    for value in chosen[kind + "s"]:
        check_level(value, kind, f"{source}: {grid_key(config, model, kind + 's')}")
    for key in ("interventions", "taus", "layers", "rates", "rhos"):
        values = chosen.get(key)
        if isinstance(values, list):
            twice = next((value for position, value in enumerate(values) if value in values[:position]), None)
            if twice is not None:
                raise LaserflowError(f"{source}: {grid_key(config, model, key)}: {twice!r} is listed twice")


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


def check_cell_map(config: dict, key: str, mapping: dict, source: str = "config") -> None:
    """Each entry of a model -> datasets mapping (``cells`` and the blocks' ``cells``) names a
    configured model and datasets, none twice."""
    for model, datasets in mapping.items():
        if model not in config["models"]:
            raise LaserflowError(f"{source}: {key}.{model}: '{model}' is not a configured model")
        for dataset in datasets:
            if dataset not in config["datasets"]:
                raise LaserflowError(f"{source}: {key}.{model}: '{dataset}' is not a configured dataset")
        if len(set(datasets)) != len(datasets):
            raise LaserflowError(f"{source}: {key}.{model}: a dataset is listed twice")


def check_selected(config: dict, source: str = "config") -> None:
    """Each ``selected`` entry names a configured model and dataset, and edits a τ of the model's
    family at one of its layers; a composite edits no matrix twice; no configuration is listed
    twice."""
    check_edit_lists(config, source, "selected", config.get("selected", {}), selected_edits)


def check_export(config: dict, source: str = "config") -> None:
    """Each ``export.edits`` list is checked as ``selected`` entries are, and as its edits apply
    together, no two edit one matrix."""
    check_edit_lists(config, source, "export.edits", config.get("export", {}).get("edits", {}), export_edits,
                     together=True)


def check_edit_lists(config: dict, source: str, section: str, lists: dict, edits_of, together: bool = False) -> None:
    """``lists`` (model -> dataset -> [configuration]) name configured models and datasets, τs of
    each model's family and its layers, and no configuration twice per list; a composite (or a
    whole list applied ``together``) edits no matrix twice."""
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
                parts = entry.get("composite", [entry])
                for part_number, part in enumerate(parts):
                    at = f"{where}.{number}" + (f".composite.{part_number}" if "composite" in entry else "")
                    for kind in ("rate", "rho"):
                        if kind in part:
                            check_level(part[kind], kind, at)
                    check_tau(at, part["tau"], info, family)
                    check_layer(at, part["layer"], info)
                check_disjoint(f"{where}.{number}", "the composite", family, parts)
            if together:
                check_disjoint(where, "the list", family, entries)
            keys = [frozenset(configuration.edits) for configuration in edits_of(config, model, dataset)]
            if len(set(keys)) != len(keys):
                raise LaserflowError(f"{where}: a configuration is listed twice")


def check_disjoint(where: str, what: str, family: Family, entries: list[dict]) -> None:
    """The edits ``entries`` apply together change different matrices (each part of a fused matrix
    is its own)."""
    seen: list[tuple[str, str | None]] = []
    for entry in entries:
        for name, part in family.matrices_of(entry["tau"], entry["layer"]):
            if any(name == other and None in (part, other_part) or (name, part) == (other, other_part)
                   for other, other_part in seen):
                raise LaserflowError(f"{where}: {what} edits {name}{f' ({part})' if part else ''} twice")
            seen.append((name, part))


def check_robustness(config: dict, source: str = "config") -> None:
    """The robustness cells name configured models and datasets."""
    check_cell_map(config, "robustness.cells", config["robustness"].get("cells", {}), source)


def rank_zero_report(config: dict, root: str | Path = ".") -> tuple[list[str], list[str]]:
    """Warnings for each (model, matrix type, level) of the configurations that run whose level
    keeps rank 0 (its jobs write the zero matrix), and notes for models whose matrix shapes are
    unknown before their jobs run (``laserflow.shapes``)."""
    laser_edits: dict[str, dict] = {}
    for model, dataset in cells(config):
        for configuration in edits(config, model, dataset):
            laser_edits.setdefault(model, {}).update(
                dict.fromkeys(edit for edit in configuration.edits if edit.intervention == "laser"))
    warnings, notes = [], []
    for model, model_edits in laser_edits.items():
        widths, origin = model_widths(config, model, root)
        if widths is None:
            notes.append(f"{model}: matrix shapes unknown before its jobs run: {origin}; a level that keeps "
                         "rank 0 shows in its job's log")
            continue
        family = family_by_name(model_info(config, model).family)
        for edit in model_edits:
            for member, (rows, columns) in matrix_shapes(family, widths, edit.tau).items():
                if edit.level.kept_rank((rows, columns)) == 0:
                    warnings.append(f"{model}: {edit.level.label} keeps rank 0 of {member} ({rows}x{columns}, from "
                                    f"{origin}): its jobs write the zero matrix, as the original does")
    return list(dict.fromkeys(warnings)), notes


def increasing(values) -> bool:
    return all(later > earlier for earlier, later in zip(values, values[1:]))


def check_compose(config: dict, source: str = "config") -> None:
    """The composed cells, τ and layers exist; the steps rise strictly from 0; no layer twice."""
    spec = config["compose"]
    check_cell_map(config, "compose.cells", spec.get("cells", {}), source)
    steps = spec["steps"]
    if steps[0] != 0 or not increasing(steps):
        raise LaserflowError(f"{source}: compose.steps: {steps} must rise strictly from 0 (the unmodified matrix)")
    if spec["layers"] != "all" and len(set(spec["layers"])) != len(spec["layers"]):
        raise LaserflowError(f"{source}: compose.layers: a layer is listed twice")
    if len(set(spec["taus"])) != len(spec["taus"]):
        raise LaserflowError(f"{source}: compose.taus: a matrix type is listed twice")
    for model in dict.fromkeys(model for model, _ in block_cells(config, "compose")):
        check_matrices(config, model, f"{source}: compose.taus", spec["taus"],
                       f"{source}: compose.layers", ComposePlan.from_config(config, model).layers)


def check_analysis(config: dict, source: str = "config") -> None:
    """The analysed cells exist, a given configuration fits each analysed model, the shares rise."""
    spec = config["analysis"]
    check_cell_map(config, "analysis.cells", spec.get("cells", {}), source)
    if not increasing(spec["shares"]):
        raise LaserflowError(f"{source}: analysis.shares: {spec['shares']} must rise strictly")
    edit = analysis_edit(config)
    if edit is None:
        return
    for model in dict.fromkeys(model for model, _ in block_cells(config, "analysis")):
        check_matrices(config, model, f"{source}: analysis.configuration.tau", [edit.tau],
                       f"{source}: analysis.configuration.layer", [edit.layer])


def main(argv: list[str] | None = None) -> int:
    """`python -m laserflow.config FILE [FILE...]`: check a config before a long run.

    Several files are layered as Snakemake's ``--configfile`` layers them. Snakemake reports a YAML
    syntax error without the file or line; this names both. Levels that keep rank 0 of a matrix
    are listed as warnings, where the matrix shapes are known (``rank_zero_report``).
    """
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m laserflow.config CONFIG [CONFIG ...]", file=sys.stderr)
        return 2
    try:
        config = load_config(*paths)
        warnings, notes = rank_zero_report(config)
    except LaserflowError as err:
        print(f"laserflow: error: {err}", file=sys.stderr)
        return 1
    for kind, lines in (("warning", warnings), ("note", notes)):
        for line in lines:
            print(f"laserflow: {kind}: {line}", file=sys.stderr)
    print(f"{' + '.join(paths)}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
