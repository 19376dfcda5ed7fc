"""laserflow benchmark: evaluation throughput vs the compute floor, SVD caching, job overhead, GPU,
and the size and speed of a factorized export.

    python benchmarks/bench.py                       # all CPU sections
    python benchmarks/bench.py --sections gpu        # the full-size GPT-J configuration (GPU)
    python benchmarks/bench.py --sections search     # the paper's search grid in both modes (long)
    python benchmarks/bench.py --sections export     # dense vs factorized GPT-J layer

Prints a table per section and writes JSON (``--out``). Every figure is measured in this run, on
this machine; see benchmarks/README.md for recorded results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from laserflow.data.catalog import DATASETS  # noqa: E402
from laserflow.data.counterfact import counterfact_items  # noqa: E402
from laserflow.edits import Level  # noqa: E402
from laserflow.families import FAMILIES  # noqa: E402
from laserflow.io import read_json  # noqa: E402
from laserflow.laser import randomized_low_rank, svd_factors, truncate  # noqa: E402
from laserflow.models import load_model, model_activation  # noqa: E402
from laserflow.scoring import score_items  # noqa: E402
from laserflow.settings import ScoringOptions  # noqa: E402
from laserflow.tiny import TinySpec, build_tiny_model  # noqa: E402

PAPER_RATES = [1, 2, 4, 6, 8, 9, 9.5, 9.9, 9.95]


def demo_items(count: int) -> list[dict]:
    items = counterfact_items(read_json(REPO / "data/demo/counterfact.json"), "demo")
    repeated = [dict(item, index=i) for i, item in enumerate((items * (count // len(items) + 1))[:count])]
    return repeated


def question_answers(items: list[dict]) -> list[str]:
    """Question + answer of each item: what a teacher-forced pass reads, and the tiny tokenizers' corpus."""
    return [item["question"] + item["answer"] for item in items]


def gemm_gflops(device: str, dtype: torch.dtype, size: int, seconds: float = 0.5) -> float:
    """The sustained GEMM rate now: size³ products for about ``seconds``, total FLOPs / total time."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    products, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(4):
            a @ b
        sync(device)
        products += 4
    return 2 * size**3 * products / (time.perf_counter() - started) / 1e9


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def floor_tokens(tokenizer, family, items, max_new_tokens=10) -> int:
    """Tokens the model must process per the protocol: one teacher-forced pass (+ generation)."""
    if family.scoring == "masked":
        return sum(len(ids) for ids in tokenizer([item["question"] + " <mask>." for item in items]).input_ids)
    tokens = sum(len(ids) for ids in tokenizer(question_answers(items)).input_ids)
    if family.scoring == "generation":
        tokens += sum(len(ids) + max_new_tokens for ids in tokenizer([item["question"] for item in items]).input_ids)
    return tokens


def timed_scoring(model, tokenizer, family, items, batch_size) -> float:
    """Seconds to score ``items`` once, after a warm-up."""
    options = ScoringOptions(batch_size=batch_size, show_progress=False)
    score_items(model, tokenizer, family, items[: min(len(items), 2 * batch_size)], options)  # warm-up
    device = str(next(model.parameters()).device)
    sync(device)
    started = time.perf_counter()
    score_items(model, tokenizer, family, items, options)
    sync(device)
    return time.perf_counter() - started


def original_loop_seconds(model_dir, items) -> float:
    """The original GPT-J CounterFact loop (protocol reference §6.1) on CPU: fp16 weights as it
    loads them, one forward of the question per item, log-softmax of the full logits at the last
    position, the top 10 decoded (compared with the answer in the original). Seconds for ``items``."""
    model, tokenizer, _ = load_model(model_dir, dtype="float16", fused_gelu=False)
    started = time.perf_counter()
    with torch.inference_mode():
        for item in items:
            ids = tokenizer(item["question"], return_tensors="pt").input_ids
            logprobs = torch.log_softmax(model(ids).logits[0, -1], dim=-1)
            [tokenizer.decode([int(token)]) for token in torch.topk(logprobs, k=10).indices]
    return time.perf_counter() - started


def paired_trials(model, tokenizer, family, items, batch_size, flops: float, trials: int) -> dict:
    """Evaluation timed between two GEMM measurements, ``trials`` times; the median trial.

    A shared machine's speed drifts by tens of percent from minute to minute, so each trial's
    floor uses the sustained GEMM rate measured just before and just after it (their mean).
    """
    runs = []
    for _ in range(trials):
        before = gemm_gflops("cpu", torch.float32, 1024)
        seconds = timed_scoring(model, tokenizer, family, items, batch_size)
        gflops = (before + gemm_gflops("cpu", torch.float32, 1024)) / 2
        floor_seconds = flops / (gflops * 1e9)
        runs.append({"items_per_s": len(items) / seconds, "gemm_gflops": gflops,
                     "floor_items_per_s": len(items) / floor_seconds, "share_of_floor": floor_seconds / seconds})
    return sorted(runs, key=lambda run: run["share_of_floor"])[len(runs) // 2] | {"trials": trials}


def section_eval(args) -> list[dict]:
    """Items/s per family on a tiny model (n_embd 256, 8 layers), batched vs one at a time vs floor.

    The floor is 2 × parameters × tokens at the GEMM rate measured beside each timed run.
    """
    items = demo_items(args.items)
    texts = question_answers(items)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family_name in ("gptj", "llama", "roberta"):
            path = Path(tmp) / family_name
            build_tiny_model(TinySpec(family_name, layers=8, hidden=256, heads=8, intermediate=1024), texts, path)
            model, tokenizer, family = load_model(path)
            params = sum(p.numel() for p in model.parameters())
            tokens = floor_tokens(tokenizer, family, items)
            row = {"family": family_name, "parameters": params, "items": len(items), "tokens": tokens,
                   "batch_size": args.batch_size, "activation": model_activation(model)}
            row |= paired_trials(model, tokenizer, family, items, args.batch_size, 2 * params * tokens, args.trials)
            single_items = items[: args.single_items]
            row["one_at_a_time_items_per_s"] = len(single_items) / timed_scoring(
                model, tokenizer, family, single_items, 1)
            if family_name == "gptj":
                original_items = items[: args.original_items]
                row["original_style_items_per_s"] = len(original_items) / original_loop_seconds(path, original_items)
                row["speedup_over_original_style"] = row["items_per_s"] / row["original_style_items_per_s"]
            rows.append(row)
    print_table("evaluation (CPU, float32)", rows,
                ["family", "parameters", "items_per_s", "one_at_a_time_items_per_s", "floor_items_per_s",
                 "share_of_floor", "gemm_gflops"])
    print("GPT-J, an emulation of the original loop (fp16, one item per forward, full logits): %.3g items/s; batched laserflow is %.0fx that"
          % (rows[0]["original_style_items_per_s"], rows[0]["speedup_over_original_style"]))
    return rows


def section_svd(args) -> list[dict]:
    """The 9-rate grid on one GPT-J fc_in-sized matrix: cached exact SVD vs 9 svd_lowrank calls."""
    device = args.device
    torch.set_num_threads(args.threads)
    weight = torch.randn(16384, 4096, generator=torch.Generator().manual_seed(0)).to(device)
    ranks = [Level(rate=rate).kept_rank(tuple(weight.shape)) for rate in PAPER_RATES]

    def cached_grid() -> tuple[float, float]:
        """What the svd rule and the sweep jobs do: one exact SVD, then a truncation per rate."""
        sync(device)
        started = time.perf_counter()
        factors = svd_factors(weight)
        sync(device)
        svd_seconds = time.perf_counter() - started
        for rank in ranks:
            truncate(factors, rank, weight)
        sync(device)
        return svd_seconds, time.perf_counter() - started

    def randomized_grid() -> float:
        """What the original does per configuration: a torch.svd_lowrank call and its product."""
        started = time.perf_counter()
        for rank in ranks:
            randomized_low_rank(weight, rank, niter=2, seed=0)
        sync(device)
        return time.perf_counter() - started

    # Cached, randomized, cached again: the cached figures are averaged so that a drift in the
    # machine's speed over the minutes this takes does not favour either side.
    first = cached_grid()
    randomized_seconds = randomized_grid()
    second = cached_grid()
    svd_seconds, cached_seconds = ((a + b) / 2 for a, b in zip(first, second))
    row = {"device": device, "shape": list(weight.shape), "ranks": ranks, "svd_seconds": svd_seconds,
           "cached_grid_seconds": cached_seconds, "randomized_grid_seconds": randomized_seconds,
           "speedup": randomized_seconds / cached_seconds}
    print_table("9-rate grid on a 16384 x 4096 matrix", [row],
                ["device", "svd_seconds", "cached_grid_seconds", "randomized_grid_seconds", "speedup"])
    return [row]


def run_quiet(command: list[str], cwd=None, env=None) -> str:
    """Run a command, its output captured; its stdout, or on failure raise with the end of its stderr."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def section_demo(args) -> list[dict]:
    """The demo sweep's wall time, and per configuration job what is not model evaluation."""
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(args.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        config = (REPO / "config.yaml").read_text().replace("data/demo/", f"{REPO / 'data/demo'}/")
        (Path(tmp) / "config.yaml").write_text(config)
        run = snakemake + ["--configfile", "config.yaml"]
        started = time.perf_counter()
        run_quiet(run, tmp)
        demo_seconds = time.perf_counter() - started
        summaries = list(Path(tmp).glob("results/*/counterfact/runs/laser/*/*/*.json"))
        score_seconds = sum(read_json(path)["timing"]["score_seconds"] for path in summaries)
        target = sorted(summaries)[0].relative_to(tmp)
        started = time.perf_counter()
        run_quiet(run + ["-n", str(target)], tmp)
        dag_seconds = time.perf_counter() - started
        overheads = {}
        for worker in ("1", "0"):  # through the warm worker (laserflow.worker), then without it
            env = dict(os.environ, LASERFLOW_WORKER=worker)
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                # The target alone (before --configfile, which takes several values): --forcerun
                # without it would also rerun everything downstream.
                run_quiet(snakemake + [str(target), "--configfile", "config.yaml", "--forcerun", str(target)], tmp, env)
                job_seconds = time.perf_counter() - started - dag_seconds
                runs.append(job_seconds - read_json(Path(tmp) / target)["timing"]["score_seconds"])
            overheads[worker] = sorted(runs)[1]
    row = {"demo_seconds": demo_seconds, "configuration_jobs": len(summaries),
           "evaluation_seconds_total": score_seconds, "dag_seconds": dag_seconds,
           "overhead_per_job_seconds": overheads["1"], "overhead_without_worker_seconds": overheads["0"],
           "job": str(target)}
    print_table("demo sweep (snakemake --cores %d)" % args.threads, [row],
                ["demo_seconds", "configuration_jobs", "evaluation_seconds_total", "overhead_per_job_seconds",
                 "overhead_without_worker_seconds"])
    return [row]


def resident_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory now (VmRSS) or at its peak since the last reset (VmHWM)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident size


def memory_job(model_dir: str, svd_path: str | None, items_count: int, batch_size: int) -> dict:
    """A configuration job's steps in this fresh process: its peak resident memory over the baseline.

    Torch's and transformers' lazily loaded code is warmed up on a small model first, so the
    growth is the job's model, edit and activations. Without ``svd_path`` it is the base job.
    """
    from laserflow.edits import Edit
    from laserflow.laser import apply_edits
    from laserflow.svd import load_svd_cache

    items = demo_items(items_count)
    options = ScoringOptions(batch_size=batch_size, show_progress=False)
    with tempfile.TemporaryDirectory() as small:
        build_tiny_model(TinySpec("gptj", layers=2, hidden=64, heads=4, intermediate=128),
                         question_answers(items), small)
        model, tokenizer, family = load_model(small)
        apply_edits(model, family, [Edit("laser", "fc_in", 1, Level(rate=9.0))])
        score_items(model, tokenizer, family, items, options)
    del model
    baseline = resident_bytes()
    reset_peak()
    model, tokenizer, family = load_model(model_dir)
    out = {"model_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
           "after_load": resident_bytes() - baseline}
    if svd_path:
        apply_edits(model, family, [Edit("laser", "fc_in", 3, Level(rate=9.0))], load_svd_cache([svd_path]))
    score_items(model, tokenizer, family, items, options)
    return out | {"peak": resident_bytes("VmHWM") - baseline}


def section_memory(args) -> list[dict]:
    """Peak resident memory of a configuration job and of the base job on the same model and items.

    The model is a 105 M-parameter GPT-J (n_embd 1024, 8 layers); each job runs in a fresh
    process. The base job's peak is the model plus the batches' activations, so the difference
    is what the edit adds (the SVD factors, the new matrix and the original's copy).
    """
    from laserflow.svd import compute_svd

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, svd_path = Path(tmp) / "model", Path(tmp) / "svd.pt"
        build_tiny_model(TinySpec("gptj", layers=8, hidden=1024, heads=16, intermediate=4096),
                         question_answers(demo_items(360)), model_dir)
        compute_svd(model_dir, "fc_in", 3, svd_path)
        jobs = {}
        for name, svd in (("base", None), ("configuration", str(svd_path))):
            command = [sys.executable, __file__, "--memory-job",
                       json.dumps([str(model_dir), svd, args.items, args.batch_size])]
            jobs[name] = json.loads(run_quiet(command).splitlines()[-1])
    model_bytes = jobs["base"]["model_bytes"]
    row = {"model_bytes": model_bytes, "batch_size": args.batch_size,
           "load_x_model": jobs["configuration"]["after_load"] / model_bytes,
           "base_job_peak_x_model": jobs["base"]["peak"] / model_bytes,
           "configuration_job_peak_x_model": jobs["configuration"]["peak"] / model_bytes,
           "edit_adds_x_model": (jobs["configuration"]["peak"] - jobs["base"]["peak"]) / model_bytes}
    print_table("job memory (resident, CPU)", [row],
                ["model_bytes", "load_x_model", "base_job_peak_x_model", "configuration_job_peak_x_model",
                 "edit_adds_x_model"])
    return [row]


def section_gpu(args) -> list[dict]:
    """One full-size CounterFact configuration (65,757 items) on a random GPT-J-6B-shaped fp16 model."""
    from transformers import AutoModelForCausalLM, GPTJConfig

    if not torch.cuda.is_available():
        print("gpu section skipped: no CUDA device")
        return []
    items = demo_items(DATASETS["counterfact"].expected_items)
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(TinySpec("gptj", layers=1, hidden=64, heads=4, intermediate=128),
                         question_answers(items[:360]), tmp)
        _, tokenizer, _ = load_model(tmp)
    config = GPTJConfig(vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28, n_head=16, rotary_dim=64,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16).eval()
    build_seconds = time.perf_counter() - started
    family = FAMILIES["gptj"]
    params = sum(p.numel() for p in model.parameters())
    name = family.parameter_names("fc_in", 27)[0]
    weight = dict(model.named_parameters())[name]
    started = time.perf_counter()
    factors = svd_factors(weight)
    with torch.no_grad():
        weight.copy_(truncate(factors, Level(rate=9.9).kept_rank(tuple(weight.shape))).half())
    sync("cuda")
    edit_seconds = time.perf_counter() - started
    rows = []
    for batch_size in args.gpu_batch_sizes:
        seconds = timed_scoring(model, tokenizer, family, items, batch_size)
        rows.append({"device": torch.cuda.get_device_name(), "parameters": params, "items": len(items),
                     "batch_size": batch_size, "seconds": seconds, "items_per_s": len(items) / seconds,
                     "model_build_seconds": build_seconds, "svd_and_edit_seconds": edit_seconds,
                     "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30})
    print_table("full-size GPT-J CounterFact configuration (fp16)", rows,
                ["device", "batch_size", "seconds", "items_per_s", "svd_and_edit_seconds", "peak_memory_gib"])
    return rows


def section_export(args) -> list[dict]:
    """A factorized export against the dense one on a GPT-J fc_in-shaped layer (16384 × 4096) at the
    paper's ranks: the bytes of the matrix as written (safetensors), and the median time of a
    forward over ``--export-tokens`` tokens through the dense Linear and through the two Linears
    ``laserflow.export.load(mode="low_rank")`` puts in its place (laserflow.export.FactorizedLinear),
    the two timed alternately so that a drift in the machine's speed favours neither."""
    from safetensors.torch import save_file

    from laserflow.export import FactorizedLinear, two_linears

    device, dtype = args.device, DTYPES[args.export_dtype]
    torch.set_num_threads(args.threads)
    out_features, in_features = 16384, 4096
    generator = torch.Generator().manual_seed(0)
    dense = torch.nn.Linear(in_features, out_features, bias=False).to(device=device, dtype=dtype).eval()
    x = torch.randn(args.export_tokens, in_features, generator=generator).to(device=device, dtype=dtype)

    def forward_seconds(layers: list) -> list[float]:
        """The median time of each layer's forward, the layers timed in turn ``--trials`` times."""
        times = [[] for _ in layers]
        with torch.inference_mode():
            for layer in layers:
                layer(x)
            for _ in range(args.trials):
                for layer, measured in zip(layers, times):
                    sync(device)
                    started = time.perf_counter()
                    layer(x)
                    sync(device)
                    measured.append(time.perf_counter() - started)
        return [sorted(measured)[len(measured) // 2] for measured in times]

    def written_bytes(tensors: dict, folder: str) -> int:
        path = Path(folder) / "weights.safetensors"
        save_file({name: value.contiguous().cpu() for name, value in tensors.items()}, path)
        return path.stat().st_size

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        dense_bytes = written_bytes({"weight": dense.weight.detach()}, folder)
        for rate in PAPER_RATES:
            rank = Level(rate=rate).kept_rank((out_features, in_features))
            a = torch.randn(out_features, rank, generator=generator).to(device=device, dtype=dtype)
            b = torch.randn(rank, in_features, generator=generator).to(device=device, dtype=dtype)
            layer = FactorizedLinear([(((0, out_features),), two_linears(a, b))], out_features, None).eval()
            factor_bytes = written_bytes({"A": a, "B": b}, folder)
            dense_seconds, seconds = forward_seconds([dense, layer])
            rows.append({"device": device, "dtype": args.export_dtype, "tokens": args.export_tokens, "rate": rate,
                         "rank": rank, "dense_bytes": dense_bytes, "factor_bytes": factor_bytes,
                         "size_ratio": factor_bytes / dense_bytes, "dense_seconds": dense_seconds,
                         "factorized_seconds": seconds, "speedup": dense_seconds / seconds})
    print_table(f"GPT-J fc_in layer (16384 x 4096), dense vs factorized, {args.export_dtype} on {device}", rows,
                ["rate", "rank", "size_ratio", "dense_seconds", "factorized_seconds", "speedup"])
    return rows


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def print_table(title: str, rows: list[dict], columns: list[str]) -> None:
    print(f"\n## {title}")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns))


def search_workdir(root: Path, name: str, items: int, sweep_modes: dict, threads: int) -> Path:
    """A working directory for the paper's grid on a 28-layer tiny GPT-J, CounterFact- and
    FEVER-shaped data of ``items`` items each."""
    workdir = root / name
    workdir.mkdir()
    records = read_json(REPO / "data/demo/counterfact.json")
    (workdir / "counterfact.json").write_text(json.dumps((records * (items // 3 // len(records) + 1))[:items // 3]))
    fever = read_json(REPO / "data/demo/fever.json")
    rows = [row for split in fever["splits"].values() for row in split]
    copies = items // len(rows) + 1  # each claim once per copy, made distinct by its copy number
    splits = {split: [dict(row, claim=f"{row['claim']} ({copy})") for copy in range(copies) for row in fever["splits"][split]]
              for split in fever["splits"]}
    (workdir / "fever.json").write_text(json.dumps({"splits": splits}))
    config = {
        "models": {"gptj": {"tiny": {"family": "gptj", "layers": 28, "hidden": 256, "heads": 8, "intermediate": 1024}}},
        "datasets": {"counterfact": {"local": "counterfact.json"}, "fever": {"local": "fever.json"}},
        "sweep": {"taus": ["fc_in", "fc_out"], "layers": "all", "rates": PAPER_RATES} | sweep_modes,
        "evaluation": {"device": "cpu", "batch_size": 64, "threads": threads},
    }
    (workdir / "config.yaml").write_text(json.dumps(config))
    return workdir


def evaluation_flops(workdir: Path) -> float:
    """Model FLOPs every evaluation of a run recorded (base, configurations, chosen)."""
    return sum(read_json(path)["timing"]["flops"] for path in (workdir / "results").rglob("*.json")
               if path.parent.name != "tables" and "timing" in read_json(path))


def section_search(args) -> list[dict]:
    """The paper's search grid (fc_in, fc_out × 28 layers × 9 rates = 504 configurations per dataset)
    as one job per configuration scoring every item, against validation-only layer groups: whole
    Snakemake runs from scratch, alternated (grouped, each, grouped), and their model FLOPs."""
    modes = {"each": {"score": "all", "group": "configuration"}, "grouped": {"score": "validation", "group": "layer"}}
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
                 "--cores", str(args.threads)]
    seconds: dict[str, list[float]] = {"each": [], "grouped": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdirs = {}
        for number, mode in enumerate(("grouped", "each", "grouped")):
            workdirs[mode] = search_workdir(Path(tmp), f"{mode}{number}", args.search_items, modes[mode], args.threads)
            started = time.perf_counter()
            run_quiet(snakemake, workdirs[mode])
            seconds[mode].append(time.perf_counter() - started)
        each, grouped = workdirs["each"], workdirs["grouped"]
        same_choices = same_test = True
        for dataset in ("counterfact", "fever"):
            full = read_json(each / f"results/gptj/{dataset}/selection.json")
            chosen = read_json(grouped / f"results/gptj/{dataset}/chosen.json")
            same_choices &= chosen["edits"] == [full["chosen"]]
            same_test &= chosen["metrics"]["test"] == full["laser"]["test"] and chosen["metrics"]["val"] == full["laser"]["val"]
        configurations = len(list((each / "results").rglob("runs/**/*.json")))
        each_flops, grouped_flops = evaluation_flops(each), evaluation_flops(grouped)
    grouped_seconds = sum(seconds["grouped"]) / len(seconds["grouped"])
    row = {"configurations": configurations, "items_per_dataset": args.search_items,
           "each_seconds": seconds["each"][0], "grouped_seconds": grouped_seconds, "grouped_runs": seconds["grouped"],
           "wall_ratio": seconds["each"][0] / grouped_seconds, "each_pflop": each_flops / 1e15,
           "grouped_pflop": grouped_flops / 1e15, "flop_ratio": each_flops / grouped_flops,
           "same_choices": same_choices, "bitwise_same_test_numbers": same_test}
    print_table("the paper's grid on a 28-layer tiny GPT-J: one job per configuration vs validation-only layer groups",
                [row], ["configurations", "each_seconds", "grouped_seconds", "wall_ratio", "flop_ratio",
                        "same_choices", "bitwise_same_test_numbers"])
    return [row]


SECTIONS = {"eval": section_eval, "svd": section_svd, "demo": section_demo, "memory": section_memory,
            "gpu": section_gpu, "search": section_search, "export": section_export}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default="eval,svd,demo,memory", help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--items", type=int, default=700)
    parser.add_argument("--single-items", type=int, default=200, help="items for the one-at-a-time loop")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--original-items", type=int, default=100, help="items for the original's GPT-J loop")
    parser.add_argument("--trials", type=int, default=3, help="timed runs per family; the median counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="device of the SVD and export sections")
    parser.add_argument("--export-tokens", type=int, default=1024, help="tokens per forward in the export section")
    parser.add_argument("--export-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--gpu-batch-sizes", type=lambda text: [int(v) for v in text.split(",")], default=[256, 512])
    parser.add_argument("--search-items", type=int, default=300, help="items per dataset of the search section")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    parser.add_argument("--memory-job", help=argparse.SUPPRESS)  # section_memory's child process
    args = parser.parse_args()
    if args.memory_job:
        print(json.dumps(memory_job(*json.loads(args.memory_job))))
        return
    # Sections not run this time keep their recorded figures.
    results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    results["machine"] = {"platform": platform.platform(), "processor": platform.processor(),
                          "torch": torch.__version__, "threads": args.threads}
    for name in args.sections.split(","):
        results[name] = SECTIONS[name](args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
