"""The functions our task YAMLs name with ``!function``: the lm-eval adapter layer.

For each benchmark: a ``custom_dataset`` loader (Hub or ``LRM_DATA_DIR``), the prompt
builders, the two extraction filters (``strict`` and ``flexible``, run through
lm-eval's built-in ``custom`` filter) and ``process_results``. Scoring itself lives in
:mod:`lrm_tasks.scoring`; this module only wires it to the harness. It imports nothing
from lm-eval, so exported task folders can carry it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from lrm_tasks.data import DataError, as_dataset_dict, load_docs, read_id_list
from lrm_tasks.prompts import (  # noqa: F401  (named by the task YAMLs)
    aime24_paper_prompt,
    aime24_prompt,
    bbh_temporal_sequences_paper_prompt,
    bbh_temporal_sequences_prompt,
    folio_paper_prompt,
    folio_prompt,
    musique_ctx_prompt,
    musique_paper_prompt,
    musique_prompt,
)
from lrm_tasks.records import build_record, get_context
from lrm_tasks.metrics import mean_of_known, normalize_answer
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

    def __new__(cls, sc: Score, mode: str, raw: str, counts: TokenCounts = UNKNOWN) -> FilteredAnswer:
        answer = sc.answer_strict if mode == STRICT else sc.answer_flexible
        obj = super().__new__(cls, NO_ANSWER_TEXT if answer is None else answer)
        obj.score, obj.mode, obj.raw, obj.counts = sc, mode, raw, counts
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


aime24_dataset = partial(load_dataset, "aime24")
bbh_temporal_sequences_dataset = partial(load_dataset, "bbh_temporal_sequences")
folio_dataset = partial(load_dataset, "folio")
musique_dataset = partial(load_dataset, "musique")

# ------------------------------------------------------------------------ filters


def filter_responses(task: str, mode: str, resps: Iterable[Sequence[str]], docs: Iterable[dict]) -> list[list[FilteredAnswer]]:
    """lm-eval filter body: each of a document's k responses -> an :class:`FilteredAnswer`.

    Gets every response of the task at once, so token counting is one batched call.
    """
    resps, docs = list(resps), list(docs)
    ctx = get_context()
    flat = [r for rs in resps for r in rs]
    counts = iter(ctx.counter.count(flat, think_end=ctx.think_end, max_gen_toks=ctx.max_gen_toks.get(task)))
    return [
        [FilteredAnswer(score(task, r, doc, think_end=ctx.think_end), mode, r, next(counts)) for r in rs]
        for rs, doc in zip(resps, docs)
    ]


def _filters(task: str):
    return partial(filter_responses, task, STRICT), partial(filter_responses, task, FLEXIBLE)


aime24_strict, aime24_flexible = _filters("aime24")
bbh_temporal_sequences_strict, bbh_temporal_sequences_flexible = _filters("bbh_temporal_sequences")
folio_strict, folio_flexible = _filters("folio")
musique_strict, musique_flexible = _filters("musique")

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
            ctx.sink(build_record(
                task=task_name or task, benchmark=task, doc=doc, repeat=i, response=e.raw,
                score=e.score, counts=e.counts, model=ctx.model,
            ))
    return metrics


def _vote_key(task: str, answer: str | None) -> str | None:
    """Answers that score the same vote together (MuSiQue: after normalisation)."""
    if answer is None:
        return None
    return normalize_answer(answer) if task == "musique" else answer


aime24_process_results = partial(process_results, "aime24")
bbh_temporal_sequences_process_results = partial(process_results, "bbh_temporal_sequences")
folio_process_results = partial(process_results, "folio")
musique_process_results = partial(process_results, "musique")
