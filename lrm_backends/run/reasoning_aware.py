"""Reasoning-aware scoring for any lm-eval ``generate_until`` task (opt-in).

    lrm eval --reasoning-aware gsm8k,minerva_math ...
    lm_eval --metadata '{"lrm_reasoning_aware": "gsm8k,minerva_math"}' ...   (or $LRM_REASONING_AWARE)

A built-in task scores the whole text of a reasoning model, reasoning included, and
stops on strings that occur inside the reasoning (gsm8k stops on "Question:"). For each
named task (or every task of a named group) this module, before lm-eval builds its
requests:

- drops the task's stop strings from the request, so only EOS stops generation while the
  model thinks (what lm-eval's vllm/hf backends do when ``think_end_token`` is set), and
  applies them afterwards, to the answer text after ``</think>`` only;
- replaces each of the task's filter ensembles ``X`` by two views that run the task's own
  filters: ``strict-X`` on the answer text after the last ``</think>`` (a response that
  never closed its reasoning has no answer, ``[no answer]``) and ``flexible-X`` on the
  whole text (a task whose only ensemble is lm-eval's default ``none`` gets ``strict``
  and ``flexible``);
- adds per-response metrics to every view: ``no_answer`` (the view found nothing: an
  unclosed reasoning for strict, or the filters' empty/fallback output),
  ``reasoning_tokens``, ``total_tokens`` and ``truncated`` (counted by the run's
  :class:`~lrm_tasks.tokens.TokenCounter`, as for our tasks);
- hands one record per response to the run's sink (the recorders and the per-task
  aggregate of :class:`lrm_backends.run.evaluation.Session`), with the strict and
  flexible answers and correctness of the task's first filter ensemble. "Correct" is the
  task's first metric equal to 1.

The task's own metrics (``exact_match`` ...) are then reported per view, e.g.
``exact_match,strict-strict-match`` and ``exact_match,flexible-flexible-extract`` for
gsm8k. Tasks not named are left exactly as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from lm_eval.api.filter import Filter, FilterEnsemble

from lrm_tasks.records import build_record, get_context
from lrm_tasks.metrics import mean_of_known
from lrm_tasks.text import split_reasoning
from lrm_tasks.tokens import UNKNOWN, TokenCounts

from lrm_backends.errors import ValidationError
from lrm_backends.run.settings import setting

log = logging.getLogger(__name__)

METADATA_KEY = "lrm_reasoning_aware"
ENV = "LRM_REASONING_AWARE"
STRICT, FLEXIBLE = "strict", "flexible"
NO_ANSWER_TEXT = "[no answer]"
# What lm-eval's own filters return when they find nothing (RegexFilter's default
# fallback, or an empty string); a filter's own `fallback=` is added per task.
DEFAULT_FALLBACKS = frozenset({"", "[invalid]"})
# Metrics added to each view; none of them is better when higher.
ADDED_METRICS = ("no_answer", "reasoning_tokens", "total_tokens", "truncated")
_DEFAULT_ENSEMBLE = "none"  # lm-eval's name for a task without filter_list


# ---------------------------------------------------------------------------- settings


def requested(metadata: Mapping[str, Any] | None) -> list[str]:
    """The task/group names made reasoning-aware (``lrm_reasoning_aware`` in
    ``--metadata``, else ``$LRM_REASONING_AWARE``): a comma-separated string or a list.

    >>> requested({"lrm_reasoning_aware": "gsm8k, minerva_math"}), requested({})
    (['gsm8k', 'minerva_math'], [])
    """
    value = setting(metadata, METADATA_KEY, ENV)
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


def check_model_args(names: Sequence[str], model_args: Mapping[str, Any]) -> None:
    """A backend that strips the reasoning itself (``think_end_token``) leaves nothing
    to split: refuse the combination before the model loads."""
    if names and model_args.get("think_end_token"):
        raise ValidationError(
            f"{METADATA_KEY}={','.join(names)} with think_end_token={model_args['think_end_token']!r}: "
            "reasoning-aware scoring needs the whole response, reasoning included. Drop "
            "think_end_token from --model_args (the stop strings then apply after </think> anyway)."
        )


def check_names(names: Sequence[str], task_manager: Any) -> None:
    """Each name is a task or group lm-eval knows, and every named task generates text
    (``output_type: generate_until``); else one :class:`ValidationError` line."""
    if not names:
        return
    from lrm_backends.errors import did_you_mean

    known = set(task_manager.all_tasks)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known, n=3, cutoff=0.75, ignore_case=True)
            raise ValidationError(
                f"{METADATA_KEY}: {name!r} is no task or group lm-eval knows.{hint} "
                "Name generate_until tasks (or groups of them) from --tasks, e.g. gsm8k,minerva_math."
            )
        if name not in set(task_manager.all_subtasks):
            continue  # a group or tag: its members are checked when the tasks are built
        cfg = getattr(task_manager.task_index.get(name), "cfg", None)  # includes resolved
        output_type = cfg.get("output_type", "generate_until") if isinstance(cfg, dict) else "generate_until"
        if output_type != "generate_until":
            raise ValidationError(_not_generative(name, output_type))


def _not_generative(name: str, output_type: str) -> str:
    return (
        f"{METADATA_KEY}: {name!r} is a {output_type} task; only generate_until tasks have a "
        "response to split at </think>. Leave it out of the list (it is scored as usual)."
    )


# ------------------------------------------------------------------------ selection


def _walk(task_dict: Any, groups: tuple[str, ...] = ()) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """(task name, names of the groups above it, Task) for every leaf task."""
    for key, value in (task_dict or {}).items():
        name = key if isinstance(key, str) else getattr(key, "group_name", None) or getattr(key, "task_name", str(key))
        if isinstance(value, dict):
            yield from _walk(value, (*groups, name))
        elif hasattr(value, "config"):
            yield name, groups, value


def select(task_dict: Any, names: Sequence[str]) -> list[tuple[str, Any]]:
    """The (name, Task) pairs that ``names`` make reasoning-aware: a named task, or every
    task under a named group. A name that matches nothing in the run, or a matched task
    that does not generate text, is a :class:`ValidationError`."""
    if not names:
        return []
    wanted = set(names)
    chosen: list[tuple[str, Any]] = []
    matched: set[str] = set()
    for name, groups, task in _walk(task_dict):
        hits = wanted.intersection((name, *groups))
        if not hits:
            continue
        matched |= hits
        output_type = getattr(task, "OUTPUT_TYPE", None) or getattr(task.config, "output_type", None)
        if output_type != "generate_until":
            raise ValidationError(_not_generative(name, str(output_type)))
        chosen.append((name, task))
    missing = [n for n in names if n not in matched]
    if missing:
        raise ValidationError(
            f"{METADATA_KEY}: {', '.join(missing)} not among this run's tasks. Name tasks or "
            "groups that --tasks also names."
        )
    return chosen


# ---------------------------------------------------------------------------- views


@dataclass
class _Response:
    """One raw response, split and counted once, shared by all views of its task."""

    raw: Any  # kept alive: the memo keys on its id
    closed: bool
    strict_text: str | None  # the answer text, stop strings applied; None = unclosed
    flexible_text: str
    counts: TokenCounts
    # view name -> (answer, correct) of the task's first ensemble, for the record
    verdict: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    recorded: bool = False


def cut_at_stops(text: str, stops: Iterable[str]) -> str:
    """``text`` up to the first occurrence of any stop string (lm-eval's rule, applied
    in order: each stop cuts what the previous ones left).

    >>> cut_at_stops(" 42\\n\\nQuestion: next", ["Question:", "</s>"])
    ' 42\\n\\n'
    """
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text


def split_views(response: str, stops: Sequence[str], think_end: str) -> tuple[bool, str | None, str]:
    """``(closed, strict text, flexible text)`` of one response: the stop strings cut
    only the answer after the last ``think_end``; an unclosed response has no strict
    text and its whole text (no stop applied) is the flexible one.

    >>> split_views("Question: why? 6*7=42</think> #### 42\\nQuestion: more", ["Question:"], "</think>")
    (True, '#### 42\\n', 'Question: why? 6*7=42</think> #### 42\\n')
    >>> split_views("Question: hmm, 41 or", ["Question:"], "</think>")
    (False, None, 'Question: hmm, 41 or')
    """
    text = "" if response is None else str(response)
    _, answer, closed = split_reasoning(text, think_end)
    if not closed:
        return False, None, text
    start = text.rfind(think_end) + len(think_end)
    cut = cut_at_stops(answer, stops)
    return True, cut.lstrip(), text[:start] + cut


@dataclass
class TaskState:
    """What one reasoning-aware task keeps during a run."""

    name: str
    stops: list[str]
    primary: str  # the task's first filter ensemble
    fallbacks: frozenset[str]
    memo: dict[int, _Response] = field(default_factory=dict)
    first_metric: str | None = None
    target: Callable[[dict], Any] | None = None

    def responses(self, raws: list[Any]) -> list[_Response]:
        """Split and count the new responses (one batched count), memoised by object."""
        ctx = get_context()
        new = [r for r in dict.fromkeys(map(id, raws)) if r not in self.memo]
        by_id = {id(r): r for r in raws}
        if new:
            counts = ctx.counter.count(
                [by_id[i] for i in new], think_end=ctx.think_end, max_gen_toks=ctx.max_gen_toks.get(self.name)
            )
            for i, c in zip(new, counts):
                closed, strict, flexible = split_views(by_id[i], self.stops, ctx.think_end)
                self.memo[i] = _Response(by_id[i], closed, strict, flexible, c)
        return [self.memo[id(r)] for r in raws]


class AwareAnswer(str):
    """A view's filtered answer (a ``str``, so the task's metrics read it as before),
    carrying the response it came from. ``AwareAnswer(text)`` alone is a plain answer:
    lm-eval casts the gold to the result's type."""

    response: _Response | None = None
    mode: str | None = None  # strict | flexible
    ensemble: str | None = None  # the task's filter ensemble this view runs
    no_answer: bool = False


class ReasoningView(Filter):
    """One view (strict or flexible) of a task's filter ensemble: picks the view's text
    of each response, runs the task's own filters on it, and tags what they return."""

    def __init__(
        self, state: TaskState, mode: str, ensemble: str, inner: Sequence[Callable[[], Filter]], **_: Any
    ) -> None:
        self.state, self.mode, self.ensemble, self.inner = state, mode, ensemble, list(inner)

    def apply(self, resps: Iterable, docs: list[dict]) -> list:
        raw_lists = [list(rs) for rs in resps]
        infos = [self.state.responses(rs) for rs in raw_lists]
        texts: list = [
            [(i.strict_text or "") if self.mode == STRICT else i.flexible_text for i in row] for row in infos
        ]
        out: Iterable = texts
        for make in self.inner:
            out = make().apply(out, docs)
        return [self._tag(o, row) for o, row in zip(out, infos)]

    def _tag(self, value: Any, row: list[_Response]) -> Any:
        if isinstance(value, list) and len(value) == len(row):
            return [self._one(v, info) for v, info in zip(value, row)]
        # A reduced value (take_first, as every generate_until task uses): its first response.
        return self._one(value, row[0]) if row else value

    def _one(self, value: Any, info: _Response) -> Any:
        unclosed = self.mode == STRICT and not info.closed
        if unclosed:
            value = NO_ANSWER_TEXT
        if not isinstance(value, str):
            return value  # a filter that returns non-text: scored as is, no record
        tagged = AwareAnswer(value)
        tagged.response, tagged.mode, tagged.ensemble = info, self.mode, self.ensemble
        tagged.no_answer = unclosed or value.strip() in self.state.fallbacks
        return tagged


def _view_names(ensemble: str) -> tuple[str, str]:
    if ensemble == _DEFAULT_ENSEMBLE:
        return STRICT, FLEXIBLE
    return f"{STRICT}-{ensemble}", f"{FLEXIBLE}-{ensemble}"


def _fallbacks(ensembles: Sequence[FilterEnsemble]) -> frozenset[str]:
    found = set(DEFAULT_FALLBACKS)
    for ens in ensembles:
        for f in ens.filters:
            fb = getattr(f, "keywords", {}).get("fallback")
            if isinstance(fb, str):
                found.add(fb)
    return frozenset(found)


# --------------------------------------------------------------------- hooking up


def make_aware(name: str, task: Any) -> TaskState:
    """Rewire one built lm-eval task in place (before its requests are built)."""
    gen = task.config.generation_kwargs if isinstance(task.config.generation_kwargs, dict) else {}
    until = gen.get("until") or []
    stops = [until] if isinstance(until, str) else [str(s) for s in until]
    # Only EOS stops generation now (lm-eval's backends add it to an empty `until`).
    task.config.generation_kwargs = {**gen, "until": []}
    # The task's filter ensembles: lm-eval keeps them on the task (Task._filters, built
    # from filter_list), and applies each under its name.
    ensembles: list[FilterEnsemble] = list(getattr(task, "_filters", None) or [])
    if not ensembles:
        from lm_eval.filters import build_filter_ensemble

        ensembles = [build_filter_ensemble(_DEFAULT_ENSEMBLE, [["take_first", None]])]
    state = TaskState(name=name, stops=stops, primary=ensembles[0].name, fallbacks=_fallbacks(ensembles))
    views: list[FilterEnsemble] = []
    for ens in ensembles:
        for mode, view in zip((STRICT, FLEXIBLE), _view_names(ens.name)):
            views.append(FilterEnsemble(name=view, filters=[partial(ReasoningView, state, mode, ens.name, ens.filters)]))
    task._filters = views
    metric_list = getattr(task.config, "metric_list", None) or []
    if metric_list and isinstance(metric_list[0], dict):
        state.first_metric = metric_list[0].get("metric") if isinstance(metric_list[0].get("metric"), str) else None
    state.target = getattr(task, "doc_to_target", None)
    from lm_eval.api.metrics import mean

    aggregation, higher = task.aggregation(), task.higher_is_better()
    for metric in ADDED_METRICS:
        aggregation.setdefault(metric, mean)
        higher.setdefault(metric, False)
    task.process_results = partial(process_results, state, task.process_results)
    log.info("lrm-bench: %s is reasoning-aware (stops after </think>: %s; views: %s)",
             name, stops, ", ".join(v.name for v in views))
    return state


def process_results(state: TaskState, original: Callable[[dict, list], dict], doc: dict, results: list) -> dict:
    """The task's own metrics on a view's answers, plus ``no_answer`` and the token
    metrics; records go to the run's sink once both views of the first ensemble are in."""
    metrics = dict(original(doc, results))
    answers = [r for r in results if isinstance(r, AwareAnswer) and r.response is not None]
    if not answers:
        return metrics
    metrics["no_answer"] = sum(a.no_answer for a in answers) / len(answers)
    for key, values in (
        ("reasoning_tokens", [a.response.counts.reasoning_tokens for a in answers]),
        ("total_tokens", [a.response.counts.total_tokens for a in answers]),
        ("truncated", [a.response.counts.truncated for a in answers]),
    ):
        value = mean_of_known(values)
        if value is not None:
            metrics[key] = value
    mode = answers[0].mode
    if mode is None or answers[0].ensemble != state.primary:
        return metrics
    correct = _correct(state, metrics)
    for repeat, a in enumerate(answers):
        info = a.response
        info.verdict[mode] = (None if a.no_answer else str(a), correct)
        if STRICT in info.verdict and FLEXIBLE in info.verdict and not info.recorded:
            info.recorded = True
            _record(state, doc, info, repeat)
    return metrics


def _correct(state: TaskState, metrics: Mapping[str, Any]) -> bool:
    key = state.first_metric if state.first_metric in metrics else next(iter(metrics), None)
    value = metrics.get(key) if key is not None else None
    try:
        return float(value) == 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class _Verdict:
    """What :func:`lrm_tasks.records.build_record` reads from a score."""

    think_closed: bool
    answer_strict: str | None
    answer_flexible: str | None
    correct_strict: bool
    correct_flexible: bool
    gold: str
    f1_strict: float | None = None
    f1_flexible: float | None = None


def _record(state: TaskState, doc: dict, info: _Response, repeat: int) -> None:
    ctx = get_context()
    if ctx.sink is None:
        return
    strict, flexible = info.verdict[STRICT], info.verdict[FLEXIBLE]
    try:
        gold = str(state.target(doc)) if state.target is not None else ""
    except Exception:  # a target the task cannot render for this doc: the record still counts
        gold = ""
    ctx.sink(build_record(
        task=state.name, benchmark=state.name, doc=doc, repeat=repeat, response=info.raw,
        score=_Verdict(info.closed, strict[0], flexible[0], strict[1], flexible[1], gold),
        counts=info.counts if info.counts is not None else UNKNOWN, model=ctx.model,
    ))
