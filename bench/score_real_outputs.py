"""Score the 583 real DeepSeek-R1-Distill-Llama-8B (AWQ) outputs with ``lrm_tasks.scoring``.

Reads ``r1_outputs_{aime24,temporal_sequences,folio,musique}.jsonl`` (released with
arXiv 2504.02010; see ../shared/data/README.md), builds each benchmark's document from
the row, scores every response, prints per-benchmark counts (strict and flexible
no-answer rate and accuracy, MuSiQue F1) and writes a JSONL dump for human review:
one line per response with its id, the tail of the response, the strict and flexible
answers and the gold answer.

The files' own ``extracted_answer`` / ``correct`` fields are rough heuristics written
while collecting them, known to be wrong in places: they are carried into the dump as
``rough_answer`` for comparison only, never used as ground truth.

    python bench/score_real_outputs.py --data ../shared/data --dump out/r1_review.jsonl
    python bench/score_real_outputs.py --data ../shared/data --overthinking
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import statistics
from collections import Counter

from lrm_tasks.benchmarks import get_benchmark
from lrm_tasks.overthinking import measure
from lrm_tasks.scoring import score

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
# How much of each response's end the dump keeps: enough to see the answer and why.
TAIL_CHARS = 1200
BENCHMARKS = ("aime24", "temporal_sequences", "folio", "musique")


def row_to_doc(benchmark: str, row: dict) -> tuple[str, dict]:
    """The lrm task name and a document (in a schema ``score`` accepts) for one row."""
    if benchmark == "aime24":
        return "aime24", {"answer": row["gold_answer"], "problem": row.get("question") or ""}
    if benchmark == "temporal_sequences":
        return "bbh_temporal_sequences", {"input": row.get("question") or "", "target": row["gold_answer"]}
    if benchmark == "folio":
        return "folio", {"label": row["gold_answer"]}
    return "musique", {
        "question": row.get("question") or "",
        "answer": row["gold_answer"],
        "answer_aliases": row.get("gold_answer_aliases") or [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of r1_outputs_*.jsonl")
    parser.add_argument("--dump", type=Path, default=None, help="write a JSONL review dump here")
    parser.add_argument("--overthinking", action="store_true",
                        help="print the overthinking measures (looping, answer switches, first answer) instead")
    args = parser.parse_args(argv)
    if args.overthinking:
        return overthinking_table(args.data)

    dump_rows = []
    print(f"{'benchmark':<20}{'n':>5}{'closed':>8}{'noans_s':>9}{'noans_f':>9}{'acc_s':>8}{'acc_f':>8}{'f1_s':>7}{'f1_f':>7}{'sec':>7}")
    for benchmark in BENCHMARKS:
        path = args.data / f"r1_outputs_{benchmark}.jsonl"
        if not path.exists():
            print(f"{benchmark:<20} missing: {path}", file=sys.stderr)
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        n = len(rows)
        closed = noans_s = noans_f = acc_s = acc_f = 0
        f1_s = f1_f = 0.0
        started = time.perf_counter()
        for row in rows:
            task, doc = row_to_doc(benchmark, row)
            s = score(task, row["response"], doc)
            closed += s.think_closed
            noans_s += s.no_answer_strict
            noans_f += s.no_answer_flexible
            acc_s += s.correct_strict
            acc_f += s.correct_flexible
            f1_s += s.f1_strict or 0.0
            f1_f += s.f1_flexible or 0.0
            dump_rows.append(
                {
                    "id": row["id"],
                    "benchmark": benchmark,
                    "think_closed": s.think_closed,
                    "response_chars": len(row["response"]),
                    "answer_text_tail": s.answer_text[-TAIL_CHARS:],
                    "response_tail": row["response"][-TAIL_CHARS:],
                    "strict": s.answer_strict,
                    "flexible": s.answer_flexible,
                    "gold": s.gold,
                    "gold_aliases": row.get("gold_answer_aliases") or [],
                    "correct_strict": s.correct_strict,
                    "correct_flexible": s.correct_flexible,
                    "f1_strict": s.f1_strict,
                    "f1_flexible": s.f1_flexible,
                    "rough_answer": row.get("extracted_answer"),
                }
            )
        seconds = time.perf_counter() - started
        f1_cols = f"{f1_s / n:>7.3f}{f1_f / n:>7.3f}" if benchmark == "musique" else f"{'':>7}{'':>7}"
        print(
            f"{benchmark:<20}{n:>5}{closed:>8}{noans_s / n:>9.3f}{noans_f / n:>9.3f}"
            f"{acc_s / n:>8.3f}{acc_f / n:>8.3f}{f1_cols}{seconds:>7.2f}"
        )
    if args.dump:
        args.dump.parent.mkdir(parents=True, exist_ok=True)
        with args.dump.open("w", encoding="utf-8") as fh:
            for item in dump_rows:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        print(f"wrote {len(dump_rows)} rows to {args.dump}")
    return 0


# The responses were generated with a 32k-token limit; the truncated ones have 10-30k
# words, the unclosed ones that stopped on their own under 1k.
LIMIT_WORDS = 5000


def overthinking_table(data: Path) -> int:
    """Print the overthinking measures per benchmark (``--overthinking``): unclosed
    responses of at least LIMIT_WORDS words count as truncated (the files carry no finish
    reason), their looping rate, the closed ones' looping rate, answer switches and the
    median share of the reasoning (in characters: no R1 tokenizer here) after the first
    commitment to the final answer."""
    print(f"{'benchmark':<20}{'n':>5}{'trunc':>7}{'loop|trunc':>12}{'loop|closed':>13}"
          f"{'first_ans':>11}{'after(med)':>12}{'switch=0':>10}{'switch>=2':>11}{'max':>5}")
    for benchmark in BENCHMARKS:
        path = data / f"r1_outputs_{benchmark}.jsonl"
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
