"""What lrm-bench adds around one lm-eval evaluation.

Before: bind each of our tasks' ``process_results`` to its lm-eval task name, apply
``repeats`` from ``--metadata`` / ``$LRM_REPEATS``, pick the tokenizer for token
counts, and open a :class:`~lrm_tasks.records.RunContext` whose sink hands every record
to the registry's ``lrm_record_response`` hook. After: one ``lrm_record_task`` call per
task with its aggregate, and the context is cleared, even when the run fails.

Around the model (any run with our tasks, or with a cache): a
:class:`~lrm_backends.run.cache.ResilientLM` that resumes from ``--cache`` and records a
backend error on one request instead of ending the run; the results get an ``lrm``
block saying how many requests failed.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lrm_tasks import harness, records
from lrm_tasks.metrics import mean_of_known
from lrm_tasks.tokens import TokenCounter

from lrm_backends.plugins import call_recorders
from lrm_backends.run.cache import ResilientLM, open_cache, settings_from
from lrm_backends.run.recording import RunInfo, close_all, records_dir
from lrm_backends.run import failures, reasoning_aware, settings

log = logging.getLogger(__name__)

TOKENIZER_ENV = "LRM_TOKENIZER"


def _iter_tasks(task_dict: Any) -> Iterator[tuple[str, Any]]:
    """(name, Task) for every leaf task in lm-eval's task dict (flat or nested)."""
    if isinstance(task_dict, dict) and isinstance(task_dict.get("tasks"), dict):
        yield from task_dict["tasks"].items()
        return
    for key, value in (task_dict or {}).items():
        if isinstance(value, dict):
            yield from _iter_tasks(value)
        elif hasattr(value, "config"):
            yield (key if isinstance(key, str) else getattr(key, "task_name", str(key))), value


def _our_benchmark(task: Any) -> str | None:
    fn = getattr(task.config, "process_results", None)
    if isinstance(fn, functools.partial) and fn.func is harness.process_results:
        return fn.args[0]
    return None


def _repeats(task: Any) -> int | None:
    return settings.repeats(getattr(task.config, "metadata", None) or {})


def _run_metadata(run_args: dict[str, Any], tasks: list[tuple[str, Any]]) -> dict[str, Any]:
    """simple_evaluate's ``metadata`` (the CLI's --metadata), else a task's copy of it."""
    meta = run_args.get("metadata")
    if isinstance(meta, dict) and meta:
        return meta
    for _, task in tasks:
        task_meta = getattr(task.config, "metadata", None)
        if isinstance(task_meta, dict) and task_meta:
            return task_meta
    return {}


def _model_tokenizer(lm: Any, model_args: dict[str, Any]) -> TokenCounter:
    name = os.environ.get(TOKENIZER_ENV) or model_args.get("lrm_tokenizer")
    if name:
        from lrm_backends.tokenizers import token_counter

        return token_counter(str(name))
    inner = getattr(lm, "lm", lm)  # lm-eval's CachingLM wraps the model
    tok = getattr(inner, "tokenizer", None)
    if tok is not None:
        try:
            return TokenCounter(tok, name=getattr(tok, "name_or_path", None))
        except TypeError:
            pass
    source = model_args.get("tokenizer") or model_args.get("pretrained")
    if isinstance(source, str) and not source.endswith(".gguf"):
        try:
            return TokenCounter.from_pretrained(source)
        except Exception as exc:  # counts then come from the backend, or stay unknown
            log.warning("lrm-bench: no tokenizer for token counts from %r (%s); set %s.", source, exc, TOKENIZER_ENV)
    return TokenCounter()


def _default_budget(lm: Any) -> int | None:
    value = getattr(getattr(lm, "lm", lm), "max_gen_toks", None)  # lm-eval's CachingLM wraps the model
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class Session:
    """State of one evaluation; see the module docstring."""

    def __init__(self, run_args: dict[str, Any]) -> None:
        self.run_args = run_args
        self.lm: Any = None  # what lm-eval's evaluate() gets: the model, wrapped
        self.resilient: ResilientLM | None = None
        self.bound = False
        self.policy = failures.FailurePolicy()
        self.record_paths: list[str] = []

    def prepare(self, lm: Any, task_dict: Any) -> bool:
        """Bind our tasks and wrap the model; return False (and do nothing) when none
        of ours is in the run and no cache was asked for."""
        tasks = list(_iter_tasks(task_dict))
        ours = [(name, task, b) for name, task in tasks if (b := _our_benchmark(task))]
        settings = settings_from(_run_metadata(self.run_args, tasks))
        aware = reasoning_aware.select(task_dict, reasoning_aware.requested(_run_metadata(self.run_args, tasks)))
        if not ours and not aware and settings.cache_dir is None:
            return False
        model_args = self.run_args.get("model_args") or {}
        if isinstance(model_args, str):
            from lm_eval.utils import simple_parse_args_string

            model_args = simple_parse_args_string(model_args)
        cache = open_cache(settings, self.run_args.get("model") or lm, model_args, lm)  # may refuse: first
        try:
            if ours or aware:
                self._bind(lm, ours, model_args, aware)
        except BaseException:
            if cache is not None:
                cache.close()
            raise
        self.policy = failures.policy_from(_run_metadata(self.run_args, tasks))
        self.resilient = ResilientLM(
            lm, cache=cache, strict=settings.strict, chunk_size=settings.chunk_size, policy=self.policy,
            log_folder=failures.log_folder_for(self.run_args.get("evaluation_tracker")),
        )
        self.lm = self.resilient
        return True

    def _bind(
        self, lm: Any, ours: list[tuple[str, Any, str]], model_args: dict[str, Any], aware: list[tuple[str, Any]] = ()
    ) -> None:
        budgets: dict[str, int] = {}
        for name, task in aware:  # any generate_until task, scored reasoning-aware (run.reasoning_aware)
            reasoning_aware.make_aware(name, task)
            # The task's budget, else the backend's default (lm-eval's hf: 256), so that
            # `truncated` is known without the backend's finish reason.
            budget = (task.config.generation_kwargs or {}).get("max_gen_toks") or _default_budget(lm)
            if budget is not None:
                budgets[name] = int(budget)
        for name, task, bench in ours:
            task.config.process_results = functools.partial(harness.process_results, bench, task_name=name)
            k = _repeats(task)
            if k is not None:
                task.config.repeats = k
            budget = (task.config.generation_kwargs or {}).get("max_gen_toks")
            if budget is not None:
                budgets[bench] = max(int(budget), budgets.get(bench, 0))
        model = self.run_args.get("model")
        identity = f"{model}:{model_args.get('pretrained', '')}" if isinstance(model, str) else type(lm).__name__
        tracker = self.run_args.get("evaluation_tracker")
        sanitized = getattr(getattr(tracker, "general_config_tracker", None), "model_name_sanitized", None)
        self.run = RunInfo(model=identity, records_dir=records_dir(getattr(tracker, "output_path", None), sanitized))
        self.aggregates: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.failed_recorders: set[str] = set()  # plugins whose record hook raised
        self.previous = records.set_context(records.RunContext(
            counter=_model_tokenizer(lm, model_args), model=identity, max_gen_toks=budgets, sink=self.sink,
        ))
        self.bound = True

    def sink(self, record: dict[str, Any]) -> None:
        agg = self.aggregates[record["task"]]
        for key in ("correct_strict", "correct_flexible", "reasoning_tokens", "total_tokens", "truncated"):
            agg[key].append(record[key])
        agg["no_answer_strict"].append(record["answer_strict"] is None)
        agg["no_answer_flexible"].append(record["answer_flexible"] is None)
        agg["failed"].append(record.get("error") is not None)
        call_recorders("lrm_record_response", self.failed_recorders, record=record, run=self.run)

    def finish(self) -> None:
        try:
            if self.bound:
                for task, agg in self.aggregates.items():
                    call_recorders(
                        "lrm_record_task", self.failed_recorders, task=task, aggregate=summarize(agg), run=self.run
                    )
        finally:
            if self.resilient is not None:
                self.resilient.close()
            if self.bound:
                records.set_context(self.previous)
                for path in close_all():
                    self.record_paths.append(str(path))
                    log.info("lrm-bench: per-response records in %s", path)

    def annotate(self, results: Any) -> Any:
        """Add the ``lrm`` block (failed requests, cache use) to lm-eval's results."""
        if self.resilient is None or not isinstance(results, dict):
            return results
        summary = self.resilient.summary()
        results["lrm"] = summary
        print(cache_line(summary), file=sys.stderr, flush=True)
        failed_tasks = set(summary["failed_by_task"])
        failed_records = [p for p in self.record_paths if any(f"lrm_responses_{t}_" in Path(p).name for t in failed_tasks)]
        failures.note_run(summary["failed_requests"], summary["requests"], failed_records or self.record_paths,
                          self.policy.allow_failures)
        if summary["failed_requests"]:
            log.warning(
                "lrm-bench: %d request(s) failed in the backend and count as no answer (%s); "
                "their records carry the error. Rerun with the same --cache to retry only them.",
                summary["failed_requests"], ", ".join(f"{t}: {n}" for t, n in summary["failed_by_task"].items()),
            )
        return results


def cache_line(summary: dict[str, Any]) -> str:
    """The run's last console line on where its responses came from.

    >>> cache_line({"responses_generated": 2, "cache": {"folder": "c", "responses_from_cache": 10}})
    'lrm-bench: 10 responses from the cache, 2 generated (cache: c)'
    >>> cache_line({"responses_generated": 3})
    'lrm-bench: 3 responses generated (no --cache: a rerun generates them again)'
    """
    generated = summary.get("responses_generated", 0)
    cache = summary.get("cache")
    if cache is None:
        return f"lrm-bench: {generated} responses generated (no --cache: a rerun generates them again)"
    return (f"lrm-bench: {cache['responses_from_cache']} responses from the cache, {generated} generated "
            f"(cache: {cache['folder']})")


def summarize(agg: dict[str, list]) -> dict[str, Any]:
    """Task aggregate from the recorded columns (strict correctness for the token split)."""
    correct = agg["correct_strict"]
    totals = agg["total_tokens"]
    return {
        "n_responses": len(correct),
        "accuracy_strict": mean_of_known(correct),
        "accuracy_flexible": mean_of_known(agg["correct_flexible"]),
        "no_answer_strict": mean_of_known(agg["no_answer_strict"]),
        "no_answer_flexible": mean_of_known(agg["no_answer_flexible"]),
        "mean_reasoning_tokens": mean_of_known(agg["reasoning_tokens"]),
        "mean_total_tokens": mean_of_known(totals),
        "truncation_rate": mean_of_known(agg["truncated"]),
        "mean_tokens_correct": mean_of_known([t for t, c in zip(totals, correct) if c]),
        "mean_tokens_incorrect": mean_of_known([t for t, c in zip(totals, correct) if not c]),
        "n_failed": sum(agg.get("failed", [])),
    }
