"""Test-time compute: reasoning / answer / total tokens of each response.

Counts come from the backend when it knows them (``lrm_tasks.text.Generation``:
exact generated-token count and finish reason, ``count_source="backend"``), else from
re-tokenizing with the evaluated model's own tokenizer (``"retokenized"``). An unknown
count is ``None``, never 0.

The reasoning is everything up to and including the end-of-thinking delimiter (all of
the response when it never closes); the answer is the rest. Both parts of every
response of a task are encoded in one batched call, and results are memoised by text,
so the strict and flexible filters count each response once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from lrm_tasks.scoring import split_reasoning

BACKEND, RETOKENIZED = "backend", "retokenized"
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class TokenCounts:
    reasoning_tokens: int | None
    answer_tokens: int | None
    total_tokens: int | None
    count_source: str | None  # "backend" | "retokenized" | None (unknown)
    finish_reason: str | None
    truncated: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


UNKNOWN = TokenCounts(None, None, None, None, None, None)


class _Encoder(Protocol):
    def __call__(self, texts: list[str]) -> list[int]: ...


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (which no tokenizer accepts) replaced by U+FFFD.

    >>> _encodable("a\\ud800b") == "a\\ufffdb", _encodable("ok")
    (True, 'ok')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _length_encoder(tokenizer: Any) -> _Encoder:
    """A batched ``texts -> token counts`` function for a tokenizer of any common kind."""
    return _safe(_raw_length_encoder(tokenizer))


def _safe(encode: _Encoder) -> _Encoder:
    def lengths(texts: list[str]) -> list[int]:
        return encode([_encodable(t) for t in texts])

    return lengths


def _raw_length_encoder(tokenizer: Any) -> _Encoder:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None and hasattr(tokenizer, "encode_batch"):
        backend = tokenizer  # a bare `tokenizers.Tokenizer`
    if backend is not None and hasattr(backend, "encode_batch"):
        fast = getattr(backend, "encode_batch_fast", None)  # tokenizers>=0.21: no offsets
        encode = fast or backend.encode_batch

        def lengths(texts: list[str]) -> list[int]:
            return [len(e) for e in encode(texts, add_special_tokens=False)]

        return lengths
    if callable(tokenizer):  # a slow transformers tokenizer

        def slow(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

        return slow
    raise TypeError(
        f"cannot count tokens with {type(tokenizer).__name__}: expected a transformers "
        "tokenizer or a tokenizers.Tokenizer."
    )


class TokenCounter:
    """Counts response tokens with one tokenizer (or none: backend counts only)."""

    def __init__(self, tokenizer: Any | None = None, *, name: str | None = None) -> None:
        self._encode = _length_encoder(tokenizer) if tokenizer is not None else None
        self.name = name
        self._memo: dict[tuple[str, str], tuple[bool, int | None, int | None]] = {}

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> TokenCounter:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(name_or_path, **kwargs), name=name_or_path)

    @property
    def has_tokenizer(self) -> bool:
        return self._encode is not None

    def count(
        self, responses: Sequence[str], *, think_end: str = "</think>", max_gen_toks: int | None = None
    ) -> list[TokenCounts]:
        """Counts for every response, in order; one batched encode for the new ones."""
        # Memoised by text: the same text with other backend facts (count, finish
        # reason, error) reuses the lengths but is combined with its own facts.
        keys = [(str(r), think_end) for r in responses]
        todo = list(dict.fromkeys(k for k in keys if k not in self._memo))
        parts: list[tuple[str, str, bool]] = [split_reasoning(text, think_end) for text, _ in todo]
        lengths: list[int] | None = None
        if self._encode is not None and todo:
            segments: list[str] = []
            for reasoning, answer, closed in parts:
                segments.append(reasoning + think_end if closed else reasoning)
                segments.append(answer)
            lengths = self._encode(segments)
        for j, key in enumerate(todo):
            reasoning_len = lengths[2 * j] if lengths is not None else None
            answer_len = lengths[2 * j + 1] if lengths is not None else None
            self._memo[key] = (parts[j][2], reasoning_len, answer_len)
        return [_combine(r, *self._memo[k], max_gen_toks) for r, k in zip(responses, keys)]

    def lengths(self, texts: Sequence[str]) -> list[int] | None:
        """Token counts of arbitrary texts, one batched encode (``None`` without a tokenizer):
        e.g. a reasoning up to a position, tokenized exactly."""
        if self._encode is None:
            return None
        return self._encode([str(t) for t in texts]) if texts else []

    def clear(self) -> None:
        self._memo.clear()


def _combine(
    response: str, closed: bool, reasoning_len: int | None, answer_len: int | None, max_gen_toks: int | None
) -> TokenCounts:
    backend_total = getattr(response, "generated_tokens", None)
    finish = getattr(response, "finish_reason", None)
    if getattr(response, "error", None):  # the backend failed: nothing was generated that we know of
        return UNKNOWN
    if backend_total is not None:
        total, source = int(backend_total), BACKEND
        if not closed:
            reasoning, answer = total, 0
        elif reasoning_len is not None:
            reasoning = min(reasoning_len, total)
            answer = total - reasoning
        else:
            reasoning = answer = None
    elif reasoning_len is not None and answer_len is not None:
        reasoning, answer, total, source = reasoning_len, answer_len, reasoning_len + answer_len, RETOKENIZED
    else:
        return TokenCounts(None, None, None, None, finish, _truncated(finish, None, max_gen_toks))
    return TokenCounts(reasoning, answer, total, source, finish, _truncated(finish, total, max_gen_toks))


def _truncated(finish: str | None, total: int | None, max_gen_toks: int | None) -> bool | None:
    """The backend's word when it has one; else whether the budget was used up."""
    if finish is not None:
        return finish == FINISH_LENGTH
    if total is None or max_gen_toks is None:
        return None
    return total >= max_gen_toks
