"""Thinking-budget curves from one run: budget forcing on saved responses.

    lrm budget RUN_DIR... --model lrm-gguf --model_args pretrained=m.gguf \\
        --budgets 1024,2048,4096 --out OUT

For each saved response (read by the replay backend's reader,
:class:`lrm_backends.models.replay.ResponseStore`: our ``lrm_responses_*.jsonl`` records
or lm-eval's ``samples_*.jsonl``) and each budget B:

- a response whose reasoning closed within B tokens keeps its own answer (no request);
- otherwise its reasoning is cut after B tokens (the model's tokenizer), closed with the
  end-of-thinking tag and a short final-answer cue (:data:`CUES`, per model family), and
  the model writes at most M answer tokens (``--answer-tokens``) greedily; that answer
  is scored with :func:`lrm_tasks.scoring.score`.

This is the s1 paper's budget forcing (Muennighoff et al. 2025, "s1: Simple test-time
scaling", section 3.1), applied after the fact: one full-length run gives the whole
accuracy-vs-budget curve for the cost of M answer tokens per (response, budget).
Requests of one response follow each other, budgets ascending, so llama.cpp (``lrm-gguf``)
and vllm (prefix caching, switched on here) reuse the shared prompt + reasoning prefix.
Identical forced prompts (an unclosed response shorter than several budgets) are sent
once. Generation goes through :class:`lrm_backends.run.cache.ResilientLM`, so with a
cache (on by default, ``OUT/cache``) a killed pass resumes where it stopped.

Writes into OUT: ``budget_results_<date>.json`` (lm-eval-style: per task, metrics
``acc``, ``acc_flexible``, ``mean_tokens``, ``forced`` with ``_stderr`` under one filter
per budget, ``budget_<B>``, and ``original`` for the saved responses as they were) and
``lrm_budget_<task>_<date>.jsonl`` records (our record fields plus ``budget``,
``forced``, ``cut_tokens``). ``lrm report`` reads them (:mod:`lrm_backends.report.budget`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrm_tasks.records import build_record
from lrm_tasks.scoring import Score, canonical_task, score
from lrm_tasks.text import Generation, split_reasoning
from lrm_tasks.tokens import TokenCounter, TokenCounts

log = logging.getLogger(__name__)

BUDGET_VERSION = 1
RESULTS_PREFIX = "budget_results_"
RECORDS_PREFIX = "lrm_budget_"
# What follows the end-of-thinking tag, per model family. R1 and its distills (and QwQ,
# Qwen3) open their answer with a bold "Final Answer" heading; the plain cue is the s1
# paper's "Final Answer:" for models without that habit.
CUES: dict[str, str] = {
    "r1": "\n\n**Final Answer**\n",
    "qwen3": "\n\n**Final Answer**\n",
    "plain": "\n\nFinal Answer: ",
}
DEFAULT_CUE = "r1"
# Enough for "\boxed{123}" or "(B)" after the cue (the s1 paper lets the answer run on;
# a short cap keeps each budget as cheap as possible).
DEFAULT_ANSWER_TOKENS = 32
# Backends that take vllm's engine arguments: prefix caching makes each budget's prompt
# (the previous budget's plus a few hundred tokens) nearly free.
VLLM_BACKENDS = ("vllm", "lrm-vllm")
ORIGINAL = "original"


class BudgetError(ValueError):
    """A budget pass that cannot run as asked; the message says what to change."""


def parse_budgets(text: str) -> list[int]:
    """``"1024,2048,4k"`` -> ``[1024, 2048, 4096]`` (sorted, distinct, positive).

    >>> parse_budgets("4k,1024, 2048")
    [1024, 2048, 4096]
    """
    out = set()
    for part in (p.strip().lower() for p in str(text).split(",")):
        if not part:
            continue
        mult = 1024 if part.endswith("k") else 1
        digits = part[:-1] if part.endswith("k") else part
        if not digits.isdigit() or int(digits) <= 0:
            raise BudgetError(f"--budgets {text!r}: {part!r} is not a positive token count; expected e.g. 1024,2048,4k")
        out.add(int(digits) * mult)
    if not out:
        raise BudgetError(f"--budgets {text!r}: expected comma-separated token counts, e.g. 1024,2048,4096")
    return sorted(out)


def resolve_cue(cue: str) -> str:
    """A family name of :data:`CUES` gives its cue; any other text is the cue itself.

    >>> resolve_cue("plain"), resolve_cue(" Answer: ")
    ('\\n\\nFinal Answer: ', ' Answer: ')
    """
    return CUES.get(cue, cue)


# ------------------------------------------------------------------ cutting in tokens


class TokenCutter:
    """Counts tokens of a text and cuts it after its first B tokens, with the model's
    tokenizer (an HF tokenizer: exact character offsets; anything with ``encode`` and
    ``decode``, such as the GGUF tokenizer: the decoded prefix)."""

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is None:
            raise BudgetError(
                "the budget pass needs the model's tokenizer to cut reasoning in tokens, and this "
                "backend has none (lm.tokenizer); pass --tokenizer NAME_OR_PATH (an HF tokenizer or a .gguf)"
            )
        self.tokenizer = tokenizer
        self._fast = getattr(tokenizer, "backend_tokenizer", None)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def count(self, text: str) -> int:
        if self._fast is not None:
            return len(self._fast.encode(text, add_special_tokens=False).ids)
        return len(self._ids(text))

    def cut(self, text: str, budget: int) -> tuple[str, int, int]:
        """``(prefix, prefix_tokens, text_tokens)``: ``text`` up to its ``budget``-th token."""
        if self._fast is not None:
            enc = self._fast.encode(text, add_special_tokens=False)
            n = len(enc.ids)
            if n <= budget:
                return text, n, n
            return text[: enc.offsets[budget - 1][1]], budget, n
        ids = self._ids(text)
        if len(ids) <= budget:
            return text, len(ids), len(ids)
        prefix = self.tokenizer.decode(ids[:budget])
        if not text.startswith(prefix):  # a character split across tokens: drop the partial one
            prefix = prefix.rstrip("\ufffd")
        return prefix, budget, len(ids)


# ------------------------------------------------------------------ the plan


@dataclass
class Item:
    """One saved response of one document, with its prompt."""

    task: str
    doc: dict[str, Any]
    doc_id: int
    repeat: int
    response: Generation
    context: str
    gen_kwargs: dict[str, Any]
    reasoning: str  # the raw text before the end-of-thinking tag (all of it when unclosed)
    closed: bool
    reasoning_tokens: int
    source: str


@dataclass
class Cell:
    """One (response, budget): kept as it was, or forced (then ``request`` indexes the
    unique forced prompt)."""

    item: Item
    budget: int
    forced: bool
    cut_tokens: int
    prefix: str = ""
    request: int | None = None


@dataclass
class Plan:
    items: list[Item]
    cells: list[Cell]
    contexts: list[tuple[Item, str]] = field(default_factory=list)  # unique forced prompts, in send order


def raw_reasoning(response: str, think_end: str) -> tuple[str, bool]:
    """The response's text before its last ``think_end`` (all of it when it never closed).

    >>> raw_reasoning("<think>a b</think>The answer is 4.", "</think>")
    ('<think>a b', True)
    """
    closed = split_reasoning(response, think_end)[2]
    return (response[: response.rfind(think_end)] if closed else response), closed


def plan_budgets(items: Sequence[Item], budgets: Sequence[int], cutter: TokenCutter, close: str) -> Plan:
    """Decide, for every item and budget, whether it keeps its answer or is forced, and
    collect the distinct forced prompts in send order (each response's budgets back to
    back, ascending, for prefix reuse)."""
    plan = Plan(list(items), [])
    index: dict[tuple[str, str], int] = {}
    for item in items:
        for b in sorted(budgets):
            if item.closed and item.reasoning_tokens <= b:
                plan.cells.append(Cell(item, b, False, item.reasoning_tokens))
                continue
            prefix, kept, _ = cutter.cut(item.reasoning, b)
            context = item.context + prefix + close
            key = (item.task, context)
            if key not in index:
                index[key] = len(plan.contexts)
                plan.contexts.append((item, context))
            plan.cells.append(Cell(item, b, True, kept, prefix, index[key]))
    return plan


def answer_requests(plan: Plan, answer_tokens: int) -> list[Any]:
    """lm-eval ``generate_until`` Instances for the forced prompts: greedy, at most
    ``answer_tokens`` tokens, the task's own stop strings."""
    from lm_eval.api.instance import Instance

    out = []
    for item, context in plan.contexts:
        gen = {
            "until": list(item.gen_kwargs.get("until") or []),
            "max_gen_toks": int(answer_tokens),
            "do_sample": False,
            "temperature": 0.0,
        }
        out.append(Instance("generate_until", item.doc, (context, gen), 0, (item.task, item.doc_id, 1)))
    return out


# ------------------------------------------------------------------ loading items


def load_items(
    run_dirs: Sequence[str], lm: Any, cutter: TokenCutter, *, tasks: Sequence[str] | None,
    think_end: str, apply_chat_template: bool, system_instruction: str | None, limit: int | None,
    warn: Callable[[str], None],
) -> list[Item]:
    """The saved responses of ``run_dirs`` matched to their task's documents and prompts
    (the task's own prompt, built by lm-eval as the original run did)."""
    from lm_eval.tasks import TaskManager

    from lrm_backends.models.replay import ReplayError, ResponseStore

    stores = []
    for d in run_dirs:
        try:
            stores.append(ResponseStore.load(d))
        except ReplayError as exc:
            raise BudgetError(str(exc)) from exc
    found = sorted({t for s in stores for (t, _, _) in s.docs if t is not None})
    names = list(tasks) if tasks else found
    if not names:
        raise BudgetError(
            f"{', '.join(run_dirs)}: the saved responses name no task; pass --tasks (e.g. --tasks aime24_lrm)"
        )
    for name in names:
        try:
            canonical_task(name)
        except ValueError as exc:
            raise BudgetError(f"task {name!r}: the budget pass scores lrm-bench tasks only ({exc})") from None
    try:
        task_dict = TaskManager().load(list(names))["tasks"]
    except Exception as exc:  # lm-eval names unknown tasks in its own message
        raise BudgetError(f"tasks {', '.join(names)}: lm-eval could not load them ({exc})") from None
    items: list[Item] = []
    for name in names:
        task = task_dict[name]
        task.build_all_requests(
            limit=limit, rank=0, world_size=1, apply_chat_template=apply_chat_template,
            system_instruction=system_instruction,
            chat_template=getattr(lm, "apply_chat_template", None) if apply_chat_template else None,
            tokenizer_name=getattr(lm, "tokenizer_name", "") if apply_chat_template else "",
        )
        missing = 0
        for inst in task.instances:
            saved = next((s for st in stores if (s := st.find(name, inst.doc, inst.doc_id)) is not None), None)
            if saved is None:
                missing += 1
                continue
            context, gen_kwargs = inst.args[0], dict(inst.args[1] or {})
            for r, entry in enumerate(saved.ordered()):
                text = Generation(entry.text, generated_tokens=entry.generated_tokens, finish_reason=entry.finish_reason)
                reasoning, closed = raw_reasoning(entry.text, think_end)
                items.append(Item(name, inst.doc, inst.doc_id, r, text, context, gen_kwargs, reasoning, closed,
                                  cutter.count(reasoning), saved.source))
        if missing:
            warn(f"{name}: {missing} of {len(task.instances)} documents have no saved response; left out")
    if not items:
        raise BudgetError(f"no saved response in {', '.join(run_dirs)} matches a document of {', '.join(names)}")
    return items


# ------------------------------------------------------------------ scoring and writing


def _counts_forced(cell: Cell, cue_tokens: int, answer: Generation, cutter: TokenCutter) -> TokenCounts:
    gen = answer.generated_tokens
    source = "backend" if gen is not None else "retokenized"
    if gen is None:
        gen = cutter.count(str(answer))
    answer_tokens = cue_tokens + gen
    finish = answer.finish_reason
    return TokenCounts(cell.cut_tokens, answer_tokens, cell.cut_tokens + answer_tokens, source, finish,
                       None if finish is None else finish == "length")


def _question_stats(rows: list[tuple[str, float | None]]) -> tuple[float | None, float | None]:
    """Mean and standard error over questions, each question's repeats averaged first."""
    from lrm_backends.report.stats import mean, stderr

    per_q: dict[str, list[float]] = defaultdict(list)
    for key, v in rows:
        if v is not None:
            per_q[key].append(float(v))
    means = [sum(v) / len(v) for v in per_q.values()]
    return mean(means), stderr(means)


def aggregate(records: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """lm-eval-style metrics of one task under filter ``label`` (``budget_<B>`` or
    ``original``): ``acc`` / ``acc_flexible`` (share correct), ``mean_tokens`` (tokens
    per response, reasoning + answer), ``forced`` (share of responses forced), each with
    ``_stderr``, and ``n`` (responses)."""
    out: dict[str, Any] = {}
    key = lambda r: str(r["doc_key"] if r["doc_key"] is not None else r.get("doc_id"))  # noqa: E731
    for metric, get in (
        ("acc", lambda r: float(r["correct_strict"])),
        ("acc_flexible", lambda r: float(r["correct_flexible"])),
        ("mean_tokens", lambda r: r["total_tokens"]),
        ("mean_reasoning_tokens", lambda r: r["reasoning_tokens"]),
        ("forced", lambda r: float(bool(r.get("forced")))),
    ):
        m, se = _question_stats([(key(r), get(r)) for r in records])
        out[f"{metric},{label}"] = m
        out[f"{metric}_stderr,{label}"] = se
    out[f"n,{label}"] = len(records)
    return out


def score_cells(
    plan: Plan, answers: Sequence[Generation], *, cue: str, close: str, think_end: str, cutter: TokenCutter,
    model: str,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Records per task for every (response, budget), and for the original responses."""
    counter = TokenCounter(cutter.tokenizer)
    cue_tokens = cutter.count(close)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    originals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    scored: dict[int, tuple[Score, TokenCounts]] = {}

    def original(item: Item) -> tuple[Score, TokenCounts]:
        if id(item) not in scored:
            counts = counter.count([item.response], think_end=think_end)[0]
            scored[id(item)] = (score(item.task, str(item.response), item.doc, think_end=think_end), counts)
        return scored[id(item)]

    for item in plan.items:
        s, counts = original(item)
        rec = build_record(task=item.task, benchmark=canonical_task(item.task), doc=item.doc, repeat=item.repeat,
                           response=item.response, score=s, counts=counts, model=model)
        originals[item.task].append({**rec, "doc_id": item.doc_id, "budget": None, "forced": False})
    for cell in plan.cells:
        item = cell.item
        if cell.forced:
            answer = answers[cell.request]
            text = Generation(cell.prefix + close + str(answer), error=getattr(answer, "error", None))
            s = score(item.task, str(text), item.doc, think_end=think_end)
            counts = _counts_forced(cell, cue_tokens, answer, cutter)
        else:
            text = item.response
            s, counts = original(item)
        rec = build_record(task=item.task, benchmark=canonical_task(item.task), doc=item.doc, repeat=item.repeat,
                           response=text, score=s, counts=counts, model=model)
        rec.update(doc_id=item.doc_id, budget=cell.budget, forced=cell.forced, cut_tokens=cell.cut_tokens,
                   original_reasoning_tokens=item.reasoning_tokens, source=item.source)
        by_task[item.task].append(rec)
    return by_task, originals


def write_outputs(
    out: Path, timestamp: str, by_task: dict[str, list[dict[str, Any]]], originals: dict[str, list[dict[str, Any]]],
    budgets: Sequence[int], config: dict[str, Any], lrm: dict[str, Any],
) -> tuple[Path, list[Path]]:
    """``budget_results_<ts>.json`` and one ``lrm_budget_<task>_<ts>.jsonl`` per task."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    record_paths = []
    for task in sorted(by_task):
        res: dict[str, Any] = {"alias": task}
        for b in budgets:
            res.update(aggregate([r for r in by_task[task] if r["budget"] == b], f"budget_{b}"))
        res.update(aggregate(originals[task], ORIGINAL))
        results[task] = res
        path = out / f"{RECORDS_PREFIX}{task}_{timestamp}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for rec in by_task[task]:
                fh.write(json.dumps(rec, ensure_ascii=True) + "\n")
        record_paths.append(path)
    payload = {
        "lrm_budget_version": BUDGET_VERSION,
        "results": results,
        "budgets": list(budgets),
        "config": config,
        "model_name": config.get("label"),
        "lrm": lrm,
    }
    path = out / f"{RESULTS_PREFIX}{timestamp}.json"
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return path, record_paths


__all__ = [
    "BudgetError", "CUES", "DEFAULT_ANSWER_TOKENS", "DEFAULT_CUE", "TokenCutter", "aggregate", "answer_requests",
    "load_items", "parse_budgets", "plan_budgets", "resolve_cue", "score_cells", "write_outputs",
]
