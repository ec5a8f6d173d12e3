"""Run folders in the shape ``lrm report`` reads, written without running a model.

``write_fake_run`` writes one lm-eval 0.4 run as lm-eval and lrm-bench do
(``results_<ts>.json``, ``samples_<task>_<ts>.jsonl``, our ``lrm_responses_*.jsonl``)
from responses described by :func:`resp`. The report's tests check every number
against it, ``bench/bench_report.py`` times the report on it, and a report plugin can
test itself on it: it is the report's input format, written down once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["MUSIQUE_TASKS", "resp", "write_fake_run"]

MUSIQUE_TASKS = ("musique_lrm", "musique_ctx_lrm")


def _doc(task: str, key: str) -> dict[str, Any]:
    if task.startswith("aime24"):
        return {"doc_key": key, "problem": f"Problem {key}?", "answer": "25", "solution": ""}
    if task.startswith("folio"):
        return {"doc_key": key, "premises": "All A are B.", "conclusion": "x is B.", "label": "True",
                "story_id": 1, "example_id": key}
    if task.startswith("musique"):
        return {"doc_key": key, "question": f"Question {key}?", "answer": "Paris", "answer_aliases": [],
                "paragraphs": [{"idx": 0, "title": "P", "paragraph_text": "Paris.", "is_supporting": True}]}
    return {"doc_key": key, "input": "Q\nOptions:\n(A) a\n(B) b", "target": "(A)", "options": {"A": "a", "B": "b"}}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _se(xs: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def write_fake_run(
    folder: Path,
    *,
    model: str,
    model_args: dict[str, Any],
    timestamp: str,
    seed: int,
    tasks: dict[str, list[dict[str, Any]]],
    records: bool = True,
    samples: bool = True,
    token_metrics: bool = True,
    max_gen_toks: int = 1000,
    repeats: int = 1,
) -> Path:
    """Write one lm-eval run as lm-eval 0.4 and lrm-bench do: ``results_<ts>.json``,
    ``samples_<task>_<ts>.jsonl`` (one line per question and filter) and our
    ``lrm_responses_<task>_<start>.jsonl`` (stamped a few seconds earlier).

    ``tasks`` maps a task to its responses, in question order, ``repeats`` per question:
    dicts with doc, text, correct_strict, correct_flexible, answer_strict,
    answer_flexible, f1_strict, f1_flexible, reasoning_tokens, total_tokens, truncated.
    """
    folder.mkdir(parents=True, exist_ok=True)
    start = timestamp[:-9] + "00.000000"  # the recorder stamps the run's start
    pretrained = model_args.get("pretrained") or model_args.get("responses")
    results: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    for task, responses in tasks.items():
        musique = task in MUSIQUE_TASKS
        docs: dict[str, list[dict]] = {}
        for r in responses:
            docs.setdefault(r["doc"], []).append(r)
        per_doc: dict[str, dict[str, dict[str, float]]] = {"strict": {}, "flexible": {}}
        lines = []
        for mode in ("strict", "flexible"):
            for doc_id, (key, rs) in enumerate(docs.items()):
                m: dict[str, float] = {
                    "exact_match": _mean([float(r[f"correct_{mode}"]) for r in rs]),
                    "no_answer": _mean([float(r[f"answer_{mode}"] is None) for r in rs]),
                }
                if musique:
                    m["f1"] = _mean([r[f"f1_{mode}"] for r in rs])
                if token_metrics:
                    m["reasoning_tokens"] = _mean([r["reasoning_tokens"] for r in rs])
                    m["total_tokens"] = _mean([r["total_tokens"] for r in rs])
                    m["truncated"] = _mean([float(r["truncated"]) for r in rs])
                per_doc[mode][key] = m
                doc = _doc(task, key)
                lines.append({
                    "doc_id": doc_id, "doc": doc, "target": "25",
                    "arguments": {"gen_args_0": {"arg_0": "prompt", "arg_1": {"until": [], "max_gen_toks": max_gen_toks}}},
                    "resps": [[r["text"] for r in rs]],
                    "filtered_resps": [[r[f"answer_{mode}"] or "[no answer]" for r in rs]],
                    "filter": mode, "metrics": list(m), "doc_hash": "0", "prompt_hash": "0", "target_hash": "0",
                    **m,
                })
        if samples:
            with open(folder / f"samples_{task}_{timestamp}.jsonl", "w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(json.dumps(line) + "\n")
        if records:
            with open(folder / f"lrm_responses_{task}_{start}.jsonl", "w", encoding="utf-8") as fh:
                counts: dict[str, int] = {}
                for r in responses:
                    rep = counts.get(r["doc"], 0)
                    counts[r["doc"]] = rep + 1
                    fh.write(json.dumps({
                        "record_version": 1, "task": task, "benchmark": task.removesuffix("_lrm"),
                        "doc_key": r["doc"], "repeat": rep, "model": f"{model}:{pretrained}",
                        "reasoning_tokens": r["reasoning_tokens"], "answer_tokens": r["total_tokens"] - r["reasoning_tokens"],
                        "total_tokens": r["total_tokens"], "count_source": "backend", "finish_reason":
                        "length" if r["truncated"] else "stop", "truncated": r["truncated"],
                        "think_closed": not r["truncated"], "answer_strict": r["answer_strict"],
                        "answer_flexible": r["answer_flexible"], "correct_strict": r["correct_strict"],
                        "correct_flexible": r["correct_flexible"], "f1_strict": r["f1_strict"] if musique else None,
                        "f1_flexible": r["f1_flexible"] if musique else None, "gold": "25", "response": r["text"],
                    }) + "\n")
        res: dict[str, Any] = {"name": task, "alias": task, "sample_len": len(docs)}
        for mode in ("strict", "flexible"):
            for metric in per_doc[mode][next(iter(docs))]:
                values = [per_doc[mode][k][metric] for k in docs]
                res[f"{metric},{mode}"] = _mean(values)
                res[f"{metric}_stderr,{mode}"] = _se(values)
        results[task] = res
        configs[task] = {"task": task, "repeats": repeats, "generation_kwargs": {"until": [], "max_gen_toks": max_gen_toks},
                         "metadata": {"version": 1.0}}
        n_samples[task] = {"original": len(docs), "effective": len(docs)}
    results["lrm_compression"] = {"name": "lrm_compression", "alias": "lrm_compression"}
    doc = {
        "results": results,
        "group_subtasks": {"lrm_compression": [t for t in tasks if t != "musique_ctx_lrm"]},
        "configs": configs,
        "versions": {t: 1.0 for t in tasks},
        "n-shot": {t: 0 for t in tasks},
        "n-samples": n_samples,
        "config": {"model": model, "model_args": model_args, "batch_size": 1, "limit": None,
                   "gen_kwargs": {}, "random_seed": seed, "numpy_seed": seed, "torch_seed": seed, "fewshot_seed": seed},
        "git_hash": None, "date": 1.0, "lm_eval_version": "0.4.13",
        "model_source": model, "model_name": pretrained, "model_name_sanitized": str(pretrained).replace("/", "__"),
    }
    path = folder / f"results_{timestamp}.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def resp(doc: str, cs: int, cf: int, total: int, reasoning: int | None = None, *, trunc: int = 0,
         noans: int = 0, f1s: float = 0.0, f1f: float | None = None, text: str | None = None) -> dict[str, Any]:
    """One response: strict and flexible correctness, tokens, truncation, strict no-answer."""
    return {
        "doc": doc, "text": text if text is not None else f"{'w ' * 3}</think> 25",
        "correct_strict": bool(cs), "correct_flexible": bool(cf),
        "answer_strict": None if noans else "25", "answer_flexible": "25" if cf or not noans else None,
        "f1_strict": f1s, "f1_flexible": f1s if f1f is None else f1f,
        "reasoning_tokens": total if reasoning is None else reasoning, "total_tokens": total, "truncated": bool(trunc),
    }
