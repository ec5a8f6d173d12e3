"""Overthinking measures on the 583 real DeepSeek-R1-Distill-Llama-8B (AWQ) outputs.

Per benchmark: how many responses never closed their reasoning, how many of those hit
the token limit (the files carry no finish reason: an unclosed response of at least
:data:`LIMIT_WORDS` words is taken as truncated; the others are short answers written
without the tag) and how many of the truncated ones loop (:func:`lrm_tasks.overthinking.is_looping`), the looping rate of closed
ones, the distribution of answer switches, and the share of the reasoning (in
characters here: the R1 tokenizer is not on this machine) spent after the first
commitment to the final answer.

    python bench/overthinking_real_outputs.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from lrm_tasks.benchmarks import get_benchmark
from lrm_tasks.overthinking import measure
from lrm_tasks.scoring import score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_real_outputs import BENCHMARKS, DEFAULT_DATA, row_to_doc  # noqa: E402


# The responses were generated with a 32k-token limit; the truncated ones have 10-30k
# words, the unclosed ones that stopped on their own under 1k.
LIMIT_WORDS = 5000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of r1_outputs_*.jsonl")
    args = parser.parse_args(argv)
    print(f"{'benchmark':<20}{'n':>5}{'trunc':>7}{'loop|trunc':>12}{'loop|closed':>13}"
          f"{'first_ans':>11}{'after(med)':>12}{'switch=0':>10}{'switch>=2':>11}{'max':>5}")
    for benchmark in BENCHMARKS:
        path = args.data / f"r1_outputs_{benchmark}.jsonl"
        if not path.exists():
            print(f"{benchmark}: missing {path}", file=sys.stderr)
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        trunc = loop_trunc = closed = loop_closed = 0
        switches: Counter[int] = Counter()
        after: list[float] = []
        with_first = 0
        for row in rows:
            task, doc = row_to_doc(benchmark, row)
            spec = get_benchmark(task)
            s = score(task, row["response"], doc)
            judge = spec.judge(doc)
            m = measure(s.reasoning, row["response"], s.answer_flexible, judge.commitments, spec.vote_key)
            if s.think_closed:
                closed += 1
                loop_closed += m.looping
            elif len(row["response"].split()) >= LIMIT_WORDS:
                trunc += 1
                loop_trunc += m.looping
            switches[m.answer_switches or 0] += 1
            if m.first_answer_chars is not None and s.reasoning:
                with_first += 1
                after.append(1 - m.first_answer_chars / len(s.reasoning))
        n = len(rows)
        med = statistics.median(after) if after else float("nan")
        print(f"{benchmark:<20}{n:>5}{trunc:>7}{f'{loop_trunc}/{trunc}':>12}{f'{loop_closed}/{closed}':>13}"
              f"{with_first:>11}{med:>12.2f}{switches[0]:>10}{sum(v for k, v in switches.items() if k >= 2):>11}"
              f"{max(switches):>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
