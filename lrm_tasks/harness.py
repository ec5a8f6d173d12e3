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
from importlib import resources
from typing import Any

from lrm_tasks import data, prompts
from lrm_tasks.scoring import Score, score

log = logging.getLogger(__name__)

NO_ANSWER = "[no answer]"
STRICT, FLEXIBLE = "strict", "flexible"

# Named id lists usable as `ids:` in dataset_kwargs or --metadata.
ID_LISTS = {"paper100": "musique_paper100_ids.txt"}


class Extraction(str):
    """A filtered response: the extracted answer as a string (``[no answer]`` if none),
    plus the :class:`~lrm_tasks.scoring.Score` and the untouched raw response."""

    score: Score
    mode: str
    raw: str

    def __new__(cls, sc: Score, mode: str, raw: str) -> Extraction:
        answer = sc.answer_strict if mode == STRICT else sc.answer_flexible
        obj = super().__new__(cls, NO_ANSWER if answer is None else answer)
        obj.score, obj.mode, obj.raw = sc, mode, raw
        return obj

    @property
    def correct(self) -> bool:
        return self.score.correct_strict if self.mode == STRICT else self.score.correct_flexible

    @property
    def no_answer(self) -> bool:
        answer = self.score.answer_strict if self.mode == STRICT else self.score.answer_flexible
        return answer is None

    @property
    def f1(self) -> float | None:
        return self.score.f1_strict if self.mode == STRICT else self.score.f1_flexible


# --------------------------------------------------------------------------- data


def _resolve_ids(ids: str | Sequence[str] | None) -> list[str] | None:
    if ids is None or isinstance(ids, (list, tuple)):
        return ids  # type: ignore[return-value]
    if ids in ID_LISTS:
        ref = resources.files("lrm_tasks") / "resources" / ID_LISTS[ids]
        with resources.as_file(ref) as path:
            return data.read_id_list(path)
    return data.read_id_list(ids)


def load_dataset(benchmark: str, ids: str | Sequence[str] | None = None, data_dir: str | None = None, **_: Any):
    """``custom_dataset`` entry: lm-eval passes the task metadata and dataset_kwargs.

    ``ids`` restricts the documents (a named list such as ``paper100``, a file of ids, or
    a list); ``data_dir`` overrides ``$LRM_DATA_DIR``. Other keys are ignored.
    """
    wanted = _resolve_ids(ids)
    docs = data.load_docs(benchmark, data_dir=data_dir)
    if wanted is not None:
        keep = set(wanted)
        found = [d for d in docs if d["doc_key"] in keep]
        if not found:
            raise data.DataError(
                f"none of the {len(keep)} requested {benchmark} ids are in the loaded data "
                f"(e.g. {', '.join(list(wanted)[:3])})."
            )
        if len(found) < len(keep):
            log.warning("%s: %d of %d requested ids are missing from the data; evaluating %d.",
                        benchmark, len(keep) - len(found), len(keep), len(found))
        order = {k: i for i, k in enumerate(wanted)}
        docs = sorted(found, key=lambda d: order[d["doc_key"]])
    return data.as_dataset_dict(docs)


aime24_dataset = partial(load_dataset, "aime24")
bbh_temporal_sequences_dataset = partial(load_dataset, "bbh_temporal_sequences")
folio_dataset = partial(load_dataset, "folio")
musique_dataset = partial(load_dataset, "musique")

# ------------------------------------------------------------------------ filters


def extract(task: str, mode: str, resps: Iterable[Sequence[str]], docs: Iterable[dict]) -> list[list[Extraction]]:
    """lm-eval filter body: each of a document's k responses -> an :class:`Extraction`."""
    return [[Extraction(score(task, r, doc), mode, r) for r in rs] for rs, doc in zip(resps, docs)]


def _filters(task: str):
    return partial(extract, task, STRICT), partial(extract, task, FLEXIBLE)


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


def process_results(task: str, doc: dict, results: Sequence[Any]) -> dict[str, float]:
    """Per-document metrics, averaged over the document's repeats.

    ``exact_match`` is the mean correctness (avg@k), ``no_answer`` the share of
    responses with no extractable answer; MuSiQue adds token ``f1``. Plain strings (a
    task run without our filters) are scored flexibly.
    """
    exs = [
        r if isinstance(r, Extraction) else Extraction(score(task, str(r), doc), FLEXIBLE, str(r))
        for r in _responses(results)
    ]
    k = len(exs) or 1
    metrics = {
        "exact_match": sum(e.correct for e in exs) / k,
        "no_answer": sum(e.no_answer for e in exs) / k,
    }
    f1s = [e.f1 for e in exs if e.f1 is not None]
    if f1s:
        metrics["f1"] = sum(f1s) / len(f1s)
    return metrics


aime24_process_results = partial(process_results, "aime24")
bbh_temporal_sequences_process_results = partial(process_results, "bbh_temporal_sequences")
folio_process_results = partial(process_results, "folio")
musique_process_results = partial(process_results, "musique")

# -------------------------------------------------------------------- prompts

aime24_prompt, aime24_paper_prompt = prompts.aime24, prompts.aime24_paper
bbh_temporal_sequences_prompt = prompts.bbh_temporal_sequences
bbh_temporal_sequences_paper_prompt = prompts.bbh_temporal_sequences_paper
folio_prompt, folio_paper_prompt = prompts.folio, prompts.folio_paper
musique_prompt, musique_paper_prompt = prompts.musique, prompts.musique_paper
musique_ctx_prompt = prompts.musique_ctx
