"""The functions our task YAMLs name with ``!function``: the lm-eval adapter layer.

For each benchmark NAME of :data:`lrm_tasks.benchmarks.BENCHMARKS` this module defines
``NAME_dataset`` (the ``custom_dataset`` loader: Hub or ``LRM_DATA_DIR``), one
``NAME_<suffix>`` per prompt of its spec (``NAME_prompt``, ``NAME_paper_prompt``,
``musique_ctx_prompt``), the two extraction filters ``NAME_strict`` and
``NAME_flexible`` (run through lm-eval's built-in ``custom`` filter) and
``NAME_process_results``. Scoring itself lives in :mod:`lrm_tasks.scoring`; this module
only wires it to the harness. It imports nothing from lm-eval, so exported task
folders can carry it.

Each response is scored once: the ``strict`` filter scores it and the ``flexible``
filter finds that score in the run context (:attr:`RunContext.scored`) instead of
scoring again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from lrm_tasks.benchmarks import BENCHMARKS, BenchmarkSpec, get_benchmark
from lrm_tasks.data import DataError, as_dataset_dict, load_docs, read_id_list
from lrm_tasks.metrics import mean_of_known
from lrm_tasks.overthinking import Overthinking, measure, share_after
from lrm_tasks.records import RunContext, build_record, get_context
from lrm_tasks.repeats import majority_index, pass_at_k
from lrm_tasks.scoring import Score, score
from lrm_tasks.tokens import UNKNOWN, TokenCounts

log = logging.getLogger(__name__)

NO_ANSWER_TEXT = "[no answer]"
STRICT, FLEXIBLE = "strict", "flexible"

# Named id lists usable as `ids:` in dataset_kwargs or --metadata, in RESOURCES.
ID_LISTS = {"paper100": "musique_paper100_ids.txt"}
RESOURCES = Path(__file__).resolve().parent / "resources"


class FilteredAnswer(str):
    """A filtered response: the extracted answer as a string (``[no answer]`` if none),
    plus its :class:`~lrm_tasks.scoring.Score`, token counts and the untouched raw response."""

    score: Score
    mode: str
    raw: str
    counts: TokenCounts
    _shared: Any

    def __new__(
        cls, sc: Score, mode: str, raw: str, counts: TokenCounts = UNKNOWN, *, _shared: Any = None
    ) -> FilteredAnswer:
        answer = sc.answer_strict if mode == STRICT else sc.answer_flexible
        obj = super().__new__(cls, NO_ANSWER_TEXT if answer is None else answer)
        obj.score, obj.mode, obj.raw, obj.counts = sc, mode, raw, counts
        obj._shared = _shared  # keeps the memo entry alive while this answer lives
        return obj

    @property
    def answer(self) -> str | None:
        return self.score.answer_strict if self.mode == STRICT else self.score.answer_flexible

    @property
    def correct(self) -> bool:
        return self.score.correct_strict if self.mode == STRICT else self.score.correct_flexible

    @property
    def no_answer(self) -> bool:
        return self.answer is None

    @property
    def f1(self) -> float | None:
        return self.score.f1_strict if self.mode == STRICT else self.score.f1_flexible


# --------------------------------------------------------------------------- data


def _resolve_ids(ids: str | Sequence[str] | None) -> list[str] | None:
    if ids is None or isinstance(ids, (list, tuple)):
        return ids  # type: ignore[return-value]
    if ids in ID_LISTS:
        return read_id_list(RESOURCES / ID_LISTS[ids])
    return read_id_list(ids)


def load_dataset(benchmark: str, ids: str | Sequence[str] | None = None, data_dir: str | None = None, **_: Any):
    """``custom_dataset`` entry: lm-eval passes the task metadata and dataset_kwargs.

    ``ids`` restricts the documents (a named list such as ``paper100``, a file of ids, or
    a list); ``data_dir`` overrides ``$LRM_DATA_DIR``. Other keys are ignored.
    """
    wanted = _resolve_ids(ids)
    docs = load_docs(benchmark, data_dir=data_dir)
    if wanted is not None:
        keep = set(wanted)
        found = [d for d in docs if d["doc_key"] in keep]
        if not found:
            raise DataError(
                f"none of the {len(keep)} requested {benchmark} ids are in the loaded data "
                f"(e.g. {', '.join(list(wanted)[:3])})."
            )
        if len(found) < len(keep):
            log.warning("%s: %d of %d requested ids are missing from the data; evaluating %d.",
                        benchmark, len(keep) - len(found), len(keep), len(found))
        order = {k: i for i, k in enumerate(wanted)}
        docs = sorted(found, key=lambda d: order[d["doc_key"]])
    return as_dataset_dict(docs)



# ------------------------------------------------------------------------ filters


class _Scored:
    """One response's score and token counts, shared by its strict and flexible answers.

    Holds the response and document it was computed from: the memo keys on their ids,
    and an entry lives exactly as long as a :class:`FilteredAnswer` holds it (so those
    ids cannot be reused by other objects meanwhile).
    """

    __slots__ = ("response", "doc", "score", "counts", "over", "first_answer_tokens", "__weakref__")

    def __init__(self, response: Any, doc: dict, score: Score, counts: TokenCounts) -> None:
        self.response, self.doc, self.score, self.counts = response, doc, score, counts
        self.over: Overthinking | None = None
        self.first_answer_tokens: int | None = None


def _overthinking(task: str, scored: list[_Scored], ctx: RunContext) -> None:
    """Fill the overthinking measures of newly scored responses; the token position of
    each first answer is its reasoning prefix tokenized exactly (one batched encode)."""
    spec = get_benchmark(task)
    for s in scored:
        judge = spec.judge(s.doc)
        s.over = measure(s.score.reasoning, str(s.response), s.score.answer_flexible, judge.commitments, spec.vote_key)
    firsts = [s for s in scored if s.over is not None and s.over.first_answer_chars is not None]
    lengths = ctx.counter.lengths([s.score.reasoning[: s.over.first_answer_chars] for s in firsts]) if firsts else None
    if lengths is not None:
        for s, n in zip(firsts, lengths):
            s.first_answer_tokens = n


def _memo_key(task: str, ctx: RunContext, response: Any, doc: dict) -> tuple:
    return (task, ctx.think_end, ctx.max_gen_toks.get(task), id(ctx.counter), id(response), id(doc))


def filter_responses(task: str, mode: str, resps: Iterable[Sequence[str]], docs: Iterable[dict]) -> list[list[FilteredAnswer]]:
    """lm-eval filter body: each of a document's k responses -> an :class:`FilteredAnswer`.

    Gets every response of the task at once, so token counting is one batched call.
    A response the other filter already scored (same response and document objects,
    same run context) is not scored or counted again.
    """
    resps, docs = list(resps), list(docs)
    ctx = get_context()
    memo = ctx.scored
    pairs = [(r, doc) for rs, doc in zip(resps, docs) for r in rs]
    found: list[_Scored | None] = []
    for r, doc in pairs:
        hit = memo.get(_memo_key(task, ctx, r, doc))
        found.append(hit if hit is not None and hit.response is r and hit.doc is doc else None)
    todo = [i for i, hit in enumerate(found) if hit is None]
    counts = ctx.counter.count(
        [pairs[i][0] for i in todo], think_end=ctx.think_end, max_gen_toks=ctx.max_gen_toks.get(task)
    ) if todo else []
    new: list[_Scored] = []
    for i, c in zip(todo, counts):
        r, doc = pairs[i]
        scored = _Scored(r, doc, score(task, r, doc, think_end=ctx.think_end), c)
        memo[_memo_key(task, ctx, r, doc)] = scored
        found[i] = scored
        new.append(scored)
    if new and ctx.sink is not None:  # the measures go into records only
        _overthinking(task, new, ctx)
    answers = iter(found)  # every entry is filled now, in response order
    return [[FilteredAnswer(s.score, mode, r, s.counts, _shared=s) for r, s in zip(rs, answers)] for rs in resps]


# ---------------------------------------------------------------- process_results


def _responses(results: Sequence[Any]) -> list[Any]:
    """lm-eval passes one entry per request; our filters keep the k repeats as a list."""
    out: list[Any] = []
    for r in results:
        out.extend(r if isinstance(r, (list, tuple)) else [r])
    return out


def process_results(task: str, doc: dict, results: Sequence[Any], *, task_name: str | None = None) -> dict[str, float]:
    """Per-document metrics over the document's k responses (k = repeats).

    ``exact_match`` is mean correctness (avg@k), ``no_answer`` the share with no
    extractable answer, MuSiQue adds token ``f1``. Token metrics: mean
    ``reasoning_tokens`` / ``total_tokens``, ``truncated`` rate, and the mean total tokens
    of correct and of incorrect responses (``tokens_correct`` / ``tokens_incorrect``,
    left out for a document with none). Unknown counts leave their metric out rather
    than report 0. With k > 1: ``pass@k`` (unbiased, Chen et al. 2021) and ``maj@k``.
    The strict call also hands one record per response to the run's sink.
    """
    ctx = get_context()
    exs = [
        r if isinstance(r, FilteredAnswer) else filter_responses(task, FLEXIBLE, [[r]], [doc])[0][0]
        for r in _responses(results)
    ]
    k = len(exs)
    if k == 0:
        return {}
    metrics: dict[str, float] = {
        "exact_match": sum(e.correct for e in exs) / k,
        "no_answer": sum(e.no_answer for e in exs) / k,
    }
    optional = {
        "f1": mean_of_known(e.f1 for e in exs),
        "reasoning_tokens": mean_of_known(e.counts.reasoning_tokens for e in exs),
        "total_tokens": mean_of_known(e.counts.total_tokens for e in exs),
        "truncated": mean_of_known(e.counts.truncated for e in exs),
        "tokens_correct": mean_of_known(e.counts.total_tokens for e in exs if e.correct),
        "tokens_incorrect": mean_of_known(e.counts.total_tokens for e in exs if not e.correct),
    }
    metrics.update({name: value for name, value in optional.items() if value is not None})
    if k > 1:
        metrics["pass@k"] = pass_at_k(k, sum(e.correct for e in exs), k)
        voted = majority_index([_vote_key(task, e.answer) for e in exs])
        metrics["maj@k"] = float(voted is not None and exs[voted].correct)
    if ctx.sink is not None and exs[0].mode == STRICT:
        for i, e in enumerate(exs):
            shared = e._shared
            over = getattr(shared, "over", None)
            first = getattr(shared, "first_answer_tokens", None)
            ctx.sink(build_record(
                task=task_name or task, benchmark=task, doc=doc, repeat=i, response=e.raw,
                score=e.score, counts=e.counts, model=ctx.model,
                overthinking=None if over is None else {
                    "first_answer_tokens": first,
                    "reasoning_after_first_answer": share_after(first, e.counts.reasoning_tokens),
                    "answer_switches": over.answer_switches,
                    "looping": over.looping,
                },
            ))
    return metrics


def _vote_key(task: str, answer: str | None) -> str | None:
    """Answers that score the same vote together (the benchmark's ``vote_key``)."""
    if answer is None:
        return None
    return get_benchmark(task).vote_key(answer)


# ------------------------------------------------------- the functions YAMLs name


def task_functions(spec: BenchmarkSpec) -> dict[str, Any]:
    """The ``!function`` targets of one benchmark's task YAMLs, by name."""
    name = spec.name
    functions: dict[str, Any] = {
        f"{name}_dataset": partial(load_dataset, name),
        f"{name}_strict": partial(filter_responses, name, STRICT),
        f"{name}_flexible": partial(filter_responses, name, FLEXIBLE),
        f"{name}_process_results": partial(process_results, name),
    }
    functions.update({f"{name}_{suffix}": prompt for suffix, prompt in spec.prompts.items()})
    return functions


for _spec in BENCHMARKS.values():
    globals().update(task_functions(_spec))
