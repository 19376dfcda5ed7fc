"""Export of a LASER'd model: a standard Hugging Face directory (dense), each edited matrix as two
rank-r factors (factorized), a model card, and the loader of the factorized form.

``export/{model}/{dataset}/`` holds ``dense/`` (what ``AutoModelFor…from_pretrained`` loads, no
laserflow needed), ``factorized/`` (the unedited weights, and each edited matrix W ≈ A·B with A
out × r and B r × in, read back by ``load``), the model card ``README.md`` (also in each format's
directory) and ``laserflow_export.json``, which marks the directory as laserflow's. The
directory is written beside its target and renamed into place at the end, after the written model
was read back and compared with the edited model on the dataset's first items.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data.catalog import dataset_info
from .edits import Edit
from .families import Family, Spans, Target
from .forward import resolve_batch_size
from .io import LaserflowError, atomic_dir, check_replaceable, read_json, read_jsonl, write_json, write_text
from .laser import apply_edits, matrix_of, matrix_shape, select_targets, svd_factors
from .manifest import verified_files
from .models import load_model, model_activation
from .paths import EXPORT_RECORD
from .prompts import build_request
from .records import read_selections
from .settings import EvaluationSettings, SvdSettings
from .svd import load_svd_cache
from .sweep import entry_edit
from .versions import software_versions

log = logging.getLogger(__name__)

FORMATS = ("dense", "factorized")
LOAD_MODES = ("dense", "low_rank")
FACTORS_RECORD = "laserflow_factors.json"  # in factorized/: how to rebuild the edited matrices
FACTORS_FILE = "factorized.safetensors"
CARD = "README.md"


@dataclass(frozen=True)
class ExportOptions:
    """``export.formats``, ``export.verify_items`` and the cell's ``export.edits`` list (None: the
    selected configuration)."""

    formats: tuple[str, ...] = FORMATS
    verify_items: int = 256
    edits: tuple[dict, ...] | None = None


@dataclass(frozen=True)
class ExportPaths:
    """The files an export job reads, and its target directory. ``choice`` is the cell's
    selection, the evaluated configuration of a one-edit list, or None for a longer list;
    ``chosen`` the selected configuration scored on every item (a validation-only search)."""

    model: str
    manifest: str
    dataset: str
    base: str
    out: str
    choice: str | None = None
    chosen: str | None = None
    svd: tuple[str, ...] = ()


def job_values(settings: dict, options: dict, inputs, out: str) -> dict:
    """An export job as plain values, from a Snakemake job's params, named input and output."""
    def one_file(name: str) -> str | None:  # an optional input is an empty list when absent
        value = getattr(inputs, name, None)
        return value if isinstance(value, str) and value else None

    paths = ExportPaths(model=inputs.model, manifest=inputs.manifest, dataset=inputs.dataset, base=inputs.base,
                        out=out, choice=one_file("choice"), chosen=one_file("chosen"),
                        svd=tuple(getattr(inputs, "svd", ())))
    return {"settings": settings, "options": options, "paths": asdict(paths)}


def run_job(job: dict) -> None:
    """One export job as plain values (``job_values``), e.g. sent through the worker."""
    options = job["options"]
    export_model(EvaluationSettings.from_dict(job["settings"]),
                 ExportOptions(tuple(options["formats"]), options["verify_items"],
                               None if options["edits"] is None else tuple(options["edits"])),
                 ExportPaths(**job["paths"] | {"svd": tuple(job["paths"]["svd"])}))


# ---------------------------------------------------------------- which edits, and the numbers that chose them


def chosen_edits(options: ExportOptions, choice: str | None) -> list[Edit]:
    """The configured edit list, or the selection's chosen configuration (always one LASER edit:
    only those compete in selection)."""
    entries = options.edits if options.edits is not None else [read_json(choice)["chosen"]]
    return [entry_edit(entry) for entry in entries]


def card_numbers(options: ExportOptions, paths: ExportPaths) -> dict:
    """Validation and test numbers of the base model and of the exported configuration (None for
    an edit list laserflow did not evaluate: longer than one edit)."""
    base = read_json(paths.base)
    numbers = {"n_items": base["n_items"], "n_val": base["n_val"],
               "base": {part: base["metrics"][part] for part in ("val", "test")}, "edited": None}
    if options.edits is None:
        (selection,) = read_selections([paths.choice], [paths.chosen] if paths.chosen else [])
        return numbers | {"chosen_by": "selection", "rule": selection["rule"], "candidates": selection["candidates"],
                          "edited": selection["laser"], "files": selection["files"]}
    numbers["chosen_by"] = "config"
    if paths.choice:
        run = read_json(paths.choice)
        numbers |= {"edited": {part: run["metrics"].get(part) for part in ("val", "test")}, "files": {"run": paths.choice}}
    return numbers


def edited_targets(model, family: Family, edits: list[Edit]) -> list[tuple[Edit, Target, torch.nn.Parameter]]:
    """Every matrix the edits change; an export's edits must change different matrices."""
    out, covered = [], {}
    for edit in edits:
        for target, param in select_targets(model, family, edit.tau, edit.layer):
            spans = target.rows or ((0, matrix_shape(param.shape, target)[0]),)
            rows = {row for start, stop in spans for row in range(start, stop)}
            for other, other_rows in covered.get(target.parameter, []):
                if rows & other_rows:
                    raise LaserflowError(
                        f"export: edits ({other.tau}, layer {other.layer}) and ({edit.tau}, layer {edit.layer}) "
                        f"both change {target.parameter}; list each matrix once")
            covered.setdefault(target.parameter, []).append((edit, rows))
            out.append((edit, target, param))
    return out


# ---------------------------------------------------------------- the factorized form


def low_rank_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (out × r) and B (r × in) with A·B the best rank-r approximation of ``matrix`` (float32),
    the singular values split evenly between them."""
    factors = svd_factors(matrix)
    U, S, Vh = factors["U"], factors["S"], factors["Vh"]
    root = S[:rank].sqrt()
    return (U[:, :rank] * root).contiguous(), (root[:, None] * Vh[:rank]).contiguous()


def _complement(spans: list[Spans], total: int) -> Spans:
    """The rows of [0, total) no span covers, as spans."""
    taken = sorted(span for part in spans for span in part)
    out, start = [], 0
    for begin, stop in taken:
        if begin > start:
            out.append((start, begin))
        start = max(start, stop)
    return tuple(out + ([(start, total)] if start < total else []))


def _rows(matrix: torch.Tensor, spans: Spans) -> torch.Tensor:
    return torch.cat([matrix[start:stop] for start, stop in spans])


def save_factorized(model, tokenizer, family: Family, edits: list[Edit], out: Path) -> dict:
    """Write the factorized form: the unedited weights and each edited matrix's two factors
    (``FACTORS_FILE``), the config, generation config and tokenizer, and how to rebuild
    (``FACTORS_RECORD``). Returns the record."""
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    tensors, parameters = {}, {}
    for edit, target, param in edited_targets(model, family, edits):
        matrix = matrix_of(param.data, target)
        rank = edit.level.kept_rank(tuple(matrix.shape))
        a, b = low_rank_factors(matrix, rank)
        tensors[f"{target.key}.A"] = a.to(param.dtype).cpu()
        tensors[f"{target.key}.B"] = b.to(param.dtype).cpu()
        entry = parameters.setdefault(target.parameter, {
            "shape": list(param.shape), "dtype": str(param.dtype).removeprefix("torch."),
            "transposed": target.transposed, "targets": []})
        entry["targets"].append({"key": target.key, "tau": edit.tau, "layer": edit.layer, "part": target.part,
                                 "rows": [list(span) for span in target.rows], "rank": rank,
                                 "shape": list(matrix.shape)})
    for name, entry in parameters.items():
        param = model.get_parameter(name)
        whole = Target(name, transposed=entry["transposed"])
        rest = _complement([tuple(map(tuple, t["rows"])) for t in entry["targets"]], matrix_shape(param.shape, whole)[0])
        if rest and entry["targets"][0]["rows"]:
            tensors[f"{name}.rest"] = _rows(matrix_of(param.data, whole).to(param.dtype), rest).cpu().contiguous()
        entry["rest"] = [list(span) for span in rest] if entry["targets"][0]["rows"] else []
    aliases, seen = {}, {}
    for name, value in model.state_dict().items():
        if name in parameters:
            continue
        storage = (value.data_ptr(), tuple(value.shape), value.dtype)
        if storage in seen:  # tied weights (e.g. the output head and the input embedding)
            aliases[name] = seen[storage]
            continue
        seen[storage] = name
        tensors[name] = value.detach().cpu().contiguous()
    save_file(tensors, out / FACTORS_FILE, metadata={"format": "laserflow-factorized"})
    model.config.save_pretrained(out)
    if model.can_generate():
        model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"format": 1, "weights": FACTORS_FILE, "parameters": parameters, "aliases": aliases}
    write_json(out / FACTORS_RECORD, record)
    return record


class FactorizedLinear(torch.nn.Module):
    """A Linear (or Conv1D) layer whose output rows come from pieces: each low-rank block as two
    Linears (in → r → rows, no bias between them), rows left dense as one Linear, then the bias."""

    def __init__(self, pieces: list[tuple[Spans, torch.nn.Module]], out_features: int, bias: torch.Tensor | None):
        super().__init__()
        self.spans = [spans for spans, _ in pieces]
        self.pieces = torch.nn.ModuleList(module for _, module in pieces)
        self.out_features = out_features
        self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spans == [((0, self.out_features),)]:
            y = self.pieces[0](x)
        else:
            y = x.new_empty(*x.shape[:-1], self.out_features)
            for spans, piece in zip(self.spans, self.pieces):
                values, offset = piece(x), 0
                for start, stop in spans:
                    y[..., start:stop] = values[..., offset:offset + stop - start]
                    offset += stop - start
        return y if self.bias is None else y + self.bias


def _linear(weight: torch.Tensor) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
    layer.weight = torch.nn.Parameter(weight, requires_grad=False)
    return layer


def two_linears(a: torch.Tensor, b: torch.Tensor) -> torch.nn.Sequential:
    """x → A(Bx) as two bias-free Linears (in → r → out)."""
    return torch.nn.Sequential(_linear(b), _linear(a))


def _factorized_state(directory: Path, record: dict) -> tuple[dict, dict]:
    """The dense state dict rebuilt from a factorized directory, and each edited matrix's pieces."""
    from safetensors.torch import load_file

    tensors = load_file(directory / record["weights"])
    state = {name: value for name, value in tensors.items() if not name.endswith((".A", ".B", ".rest"))}
    state |= {alias: state[source] for alias, source in record["aliases"].items()}
    pieces = {}
    for name, entry in record["parameters"].items():
        dtype = getattr(torch, entry["dtype"])
        shape = entry["shape"][::-1] if entry["transposed"] else entry["shape"]
        matrix = torch.empty(shape, dtype=torch.float32)
        parts = []
        for target in entry["targets"]:
            a, b = tensors[target["key"] + ".A"], tensors[target["key"] + ".B"]
            spans = tuple(map(tuple, target["rows"])) or ((0, shape[0]),)
            rows = 0
            for start, stop in spans:
                matrix[start:stop] = (a[rows:rows + stop - start].float() @ b.float())
                rows += stop - start
            parts.append((spans, two_linears(a, b)))
        if entry["rest"]:
            rest, rows = tensors[name + ".rest"], 0
            for start, stop in map(tuple, entry["rest"]):
                matrix[start:stop] = rest[rows:rows + stop - start].float()
                rows += stop - start
            parts.append((tuple(map(tuple, entry["rest"])), _linear(rest)))
        state[name] = (matrix.T if entry["transposed"] else matrix).to(dtype).contiguous()
        pieces[name] = (parts, shape[0])
    return state, pieces


def _model_class(config):
    import transformers

    return getattr(transformers, config.architectures[0])


def load(directory: str | os.PathLike, mode: str = "dense", device: str = "cpu"):
    """A model from an export: ``dense`` gives the standard model (from ``dense/``, or rebuilt
    from the factors), ``low_rank`` one whose edited layers compute x → A(Bx) with two Linears
    (fewer FLOPs at low rank; for inference: it does not save back to a standard checkpoint).

    ``directory`` is an export directory, or its ``dense/`` or ``factorized/`` directory.
    """
    from transformers import AutoConfig

    if mode not in LOAD_MODES:
        raise LaserflowError(f"load mode '{mode}' is not one of {', '.join(LOAD_MODES)}")
    directory = Path(directory)
    if (directory / "factorized").is_dir() and (mode == "low_rank" or not (directory / "dense").is_dir()):
        directory = directory / "factorized"
    elif (directory / "dense").is_dir():
        directory = directory / "dense"
    if not (directory / FACTORS_RECORD).is_file():
        if mode == "low_rank":
            raise LaserflowError(f"{directory}: not a factorized export (no {FACTORS_RECORD})")
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        return _model_class(config).from_pretrained(directory, local_files_only=True).to(device).eval()
    record = read_json(directory / FACTORS_RECORD)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    state, pieces = _factorized_state(directory, record)
    dtype = next(value.dtype for value in state.values() if value.is_floating_point())
    model = _model_class(config).from_pretrained(None, config=config, state_dict=state, dtype=dtype)
    if mode == "low_rank":
        for name, (parts, out_features) in pieces.items():
            module_name = name.removesuffix(".weight")
            module = model.get_submodule(module_name)
            parent, _, child = module_name.rpartition(".")
            setattr(model.get_submodule(parent), child, FactorizedLinear(parts, out_features, module.bias))
    return model.to(device).eval()


# ---------------------------------------------------------------- verification


def _batches(tokenizer, texts: list[str], batch_size: int, device):
    for start in tqdm(range(0, len(texts), batch_size), desc="verifying the export", mininterval=2.0):
        encoded = tokenizer(texts[start:start + batch_size], padding=True, return_tensors="pt")
        yield {"input_ids": encoded.input_ids.to(device), "attention_mask": encoded.attention_mask.to(device)}


def compare_outputs(reference, others: dict, tokenizer, texts: list[str], batch_size: int) -> dict:
    """For each other model: whether its logits equal the reference's bit for bit on ``texts``,
    the largest log-prob difference and the share of positions with the same top-1 token."""
    device = next(reference.parameters()).device
    out = {name: {"equal": True, "max_abs_logprob_diff": 0.0, "top1_agreement": 0} for name in others}
    positions = 0
    with torch.inference_mode():
        for batch in _batches(tokenizer, texts, batch_size, device):
            mask = batch["attention_mask"].bool()
            expected = reference(**batch).logits[mask]
            positions += len(expected)
            for name, model in others.items():
                got = model(**batch).logits[mask]
                result = out[name]
                result["equal"] &= torch.equal(got, expected)
                diff = (torch.log_softmax(got.float(), -1) - torch.log_softmax(expected.float(), -1)).abs().max()
                if not torch.isfinite(diff):
                    raise LaserflowError(f"export: the {name} export gives non-finite outputs")
                result["max_abs_logprob_diff"] = max(result["max_abs_logprob_diff"], diff.item())
                result["top1_agreement"] += int((got.argmax(-1) == expected.argmax(-1)).sum())
    for result in out.values():
        result["top1_agreement"] = result["top1_agreement"] / positions
    return out | {"items": len(texts), "positions": positions}


# ---------------------------------------------------------------- the export


def _write_failure(err: Exception) -> str | None:
    """Why writing failed, when ``err`` is an I/O error (a full disk among others), else None."""
    if isinstance(err, OSError) and err.errno is not None:
        return f"{os.strerror(err.errno)} (os error {err.errno})"
    text = str(err)
    return text.split("I/O error: ", 1)[1] if type(err).__name__ == "SafetensorError" and "I/O error: " in text else None


def export_model(settings: EvaluationSettings, options: ExportOptions, paths: ExportPaths) -> dict:
    """Edit the model, write the requested formats and the model card, verify, and rename the
    directory into place; returns the record written to ``laserflow_export.json``."""
    from transformers import AutoTokenizer

    if not options.formats or not set(options.formats) <= set(FORMATS):
        raise LaserflowError(f"export.formats: {list(options.formats)} is not a list of {', '.join(FORMATS)}")
    check_replaceable(paths.out, EXPORT_RECORD)
    edits = chosen_edits(options, paths.choice)
    numbers = card_numbers(options, paths)
    weights = verified_files(paths.model, paths.manifest)
    model, tokenizer, family = load_model(paths.model, dtype=settings.dtype, device=settings.device,
                                          fused_gelu=settings.fused_gelu)
    svd = settings.svd or SvdSettings()
    edited_targets(model, family, edits)  # refuses overlapping edits before any work
    apply_edits(model, family, edits, load_svd_cache(paths.svd) if svd.mode == "exact" else None, svd.mode, svd.seed)
    log.info("exporting %s edited by %s as %s", settings.model, [edit.describe() for edit in edits],
             ", ".join(options.formats))
    info = dataset_info(settings.dataset)
    items = read_jsonl(paths.dataset)[:options.verify_items]
    if not items:
        raise LaserflowError(f"{paths.dataset}: the dataset has no items")
    texts = [build_request(info, family, tokenizer, item, settings.scoring).prompt for item in items]
    device = next(model.parameters()).device
    batch_size = resolve_batch_size(settings.scoring.batch_size, device)
    source_tokenizer = AutoTokenizer.from_pretrained(paths.model, local_files_only=True)
    try:
        with atomic_dir(paths.out) as tmp:
            loaded, files = {}, {}
            if "dense" in options.formats:
                model.save_pretrained(tmp / "dense")
                source_tokenizer.save_pretrained(tmp / "dense")
                loaded["dense"] = load(tmp / "dense", device=str(device))
                files["dense"] = _weight_bytes(tmp / "dense")
            if "factorized" in options.formats:
                factors = save_factorized(model, source_tokenizer, family, edits, tmp / "factorized")
                loaded["factorized"] = load(tmp / "factorized", "low_rank", str(device))
                files["factorized"] = _weight_bytes(tmp / "factorized")
            verification = compare_outputs(model, loaded, tokenizer, texts, batch_size)
            if "dense" in loaded and not verification["dense"]["equal"]:
                raise LaserflowError(f"{paths.out}: the dense export's outputs differ from the edited model's")
            del loaded
            record = {
                "format": 1, "model": settings.model, "dataset": settings.dataset, "family": family.name,
                "source": settings.model_source, "weights": weights,
                "edits": [edit.describe() | {"matrices": _matrices(model, family, edit)} for edit in edits],
                "numbers": numbers, "formats": list(options.formats), "weight_bytes": files,
                "factorized_matrices": _factor_sizes(factors) if "factorized" in options.formats else None,
                "verification": verification,
                "evaluation": {"dtype": settings.dtype, "activation": model_activation(model)},
                "software": software_versions(),
            }
            card = model_card(record, paths.out)
            write_json(tmp / EXPORT_RECORD, record)
            for where in [tmp, *(tmp / name for name in options.formats)]:
                write_text(where / CARD, card)
    except Exception as err:
        reason = _write_failure(err)
        if reason is None:
            raise
        raise LaserflowError(f"{paths.out}: could not write the export: {reason}; nothing was written") from None
    log.info("wrote %s (%s)", paths.out, ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in files.items()))
    return record


def _weight_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*.safetensors"))


def _matrices(model, family: Family, edit: Edit) -> list[dict]:
    """Each matrix an edit changed: its name, shape (out × in) and the rank kept."""
    out = []
    for target, param in select_targets(model, family, edit.tau, edit.layer):
        shape = matrix_shape(param.shape, target)
        out.append({"matrix": target.key, "shape": list(shape), "rank": edit.level.kept_rank(shape),
                    "full_rank": min(shape)})
    return out


def _factor_sizes(record: dict) -> dict:
    """Bytes of the edited matrices stored dense against their two factors."""
    dense = factors = 0
    for entry in record["parameters"].values():
        size = torch.tensor([], dtype=getattr(torch, entry["dtype"])).element_size()
        for target in entry["targets"]:
            rows, columns = target["shape"]
            dense += rows * columns * size
            factors += target["rank"] * (rows + columns) * size
    return {"dense_bytes": dense, "factor_bytes": factors}


def _metric_row(name: str, metrics: dict) -> str:
    """A table row; a part not scored (a validation-only search's run on the test part) reads "—"."""
    cells = [f"{part['acc']:.2f} | {part['logloss']:.4f}" if part and part.get("acc") is not None else "— | —"
             for part in (metrics["val"], metrics.get("test"))]
    return f"| {name} | {' | '.join(cells)} |"


def model_card(record: dict, where: str) -> str:
    """The export's README.md: source, edits, the numbers that chose them, files, verification,
    software and how to load it."""
    source, numbers = record["source"], record["numbers"]
    if "hub" in source:
        origin, revision = f"`{source['hub']}` (Hugging Face hub)", f"`{source['revision']}`"
    elif "path" in source:
        origin, revision = f"the local directory `{source['path']}`", "not recorded (a local copy)"
    else:
        spec = ", ".join(f"{key} {value}" for key, value in source["tiny"].items())
        origin, revision = f"a tiny random-weight model built by laserflow ({spec})", "none (built locally)"
    masked = record["family"] == "roberta"
    auto = "AutoModelForMaskedLM" if masked else "AutoModelForCausalLM"
    software = record["software"]
    lines = ["---", "library_name: transformers"]
    lines += [f"base_model: {source['hub']}"] if "hub" in source else []
    lines += ["tags: [laser, low-rank, laserflow]", "---", "",
              f"# {record['model']} with LASER ({record['dataset']})", "",
              f"{origin[0].upper() + origin[1:]} with LASER (layer-selective rank reduction; Sharma, Ash and Misra, "
              "ICLR 2024) applied: "
              "each matrix below is replaced by its best rank-r approximation. Exported by laserflow "
              f"{software.get('laserflow')} (commit `{software.get('laserflow_commit')}`).", "",
              "## Source model", "", "| | |", "|---|---|", f"| model | {origin} |", f"| revision | {revision} |"]
    lines += [f"| `{name}` sha256 | `{digest}` |" for name, digest in record["weights"].items()
              if name.endswith((".safetensors", ".bin"))]
    lines += ["", "## Edits (applied in order)", "", "| # | τ | layer | ρ | rate | matrix (out × in): rank kept of full |",
              "|---|---|---|---|---|---|"]
    for number, edit in enumerate(record["edits"], start=1):
        matrices = "; ".join(f"`{m['matrix']}` ({m['shape'][0]} × {m['shape'][1]}): {m['rank']} of {m['full_rank']}"
                             for m in edit["matrices"])
        rate = f"{edit['rate']:g}" if "rate" in edit else ""
        lines.append(f"| {number} | {edit['tau']} | {edit['layer']} | {edit['rho']:g} | {rate} | {matrices} |")
    n_val, n_test = numbers["n_val"], numbers["n_items"] - numbers["n_val"]
    lines += ["", f"## Numbers on {record['dataset']}", ""]
    if numbers["chosen_by"] == "selection":
        lines.append(f"Chosen among {numbers['candidates']} LASER configurations on the validation part (the first "
                     f"{n_val} of {numbers['n_items']} items) by the rule: {numbers['rule']}. The test part is the "
                     f"other {n_test} items.")
    else:
        lines.append("The edit list was given in the config (`export.edits`), not selected by laserflow."
                     + ("" if numbers["edited"] else " laserflow evaluates single edits only, so the edited model's "
                        "numbers are not available; the base model's are."))
    lines += ["", "| model | validation acc (%) | validation log-loss | test acc (%) | test log-loss |",
              "|---|---|---|---|---|", _metric_row("base", numbers["base"])]
    lines += [_metric_row("LASER", numbers["edited"])] if numbers["edited"] else []
    evaluation = record["evaluation"]
    lines += ["", f"Evaluated in {evaluation['dtype']} with the activation `{evaluation['activation']}` (the exported "
              "config runs the same one), greedy decoding where the protocol generates."]
    lines += ["", "## Files", ""]
    sizes = record["weight_bytes"]
    if "dense" in sizes:
        lines.append(f"- `dense/`: a standard Hugging Face model directory ({sizes['dense'] / 1e6:.2f} MB of weights).")
    if "factorized" in sizes:
        matrices = record["factorized_matrices"]
        lines.append(f"- `factorized/`: each edited matrix W stored as A (out × r) and B (r × in) "
                     f"({sizes['factorized'] / 1e6:.2f} MB of weights; the edited matrices take "
                     f"{matrices['factor_bytes'] / 1e6:.3f} MB as factors against {matrices['dense_bytes'] / 1e6:.3f} MB "
                     "dense). It needs laserflow to load.")
    verification = record["verification"]
    lines += ["", "## Verification", "",
              f"On the dataset's first {verification['items']} items ({verification['positions']} token positions):"]
    if "dense" in verification:
        lines.append("- `dense/` read back with transformers gives logits equal to the edited model's, bit for bit.")
    if "factorized" in verification:
        result = verification["factorized"]
        lines.append(f"- `factorized/` (two Linears per edited matrix): largest log-prob difference "
                     f"{result['max_abs_logprob_diff']:.2e}, the same top-1 token at "
                     f"{100 * result['top1_agreement']:.2f}% of positions.")
    lines += ["", "## How to load", "", "```python", f"from transformers import {auto}, AutoTokenizer", "",
              f'model = {auto}.from_pretrained("{where}/dense")', f'tokenizer = AutoTokenizer.from_pretrained("{where}/dense")',
              "", "# the factorized form (needs laserflow):", "from laserflow.export import load", "",
              f'model = load("{where}/factorized", mode="low_rank")  # edited layers as two Linears',
              f'model = load("{where}/factorized")  # a standard model, the edited matrices rebuilt', "```", "",
              "Software: " + ", ".join(f"{name} {version}" for name, version in software.items()
                                       if name != "laserflow_commit" and version) + "."]
    return "\n".join(lines) + "\n"
