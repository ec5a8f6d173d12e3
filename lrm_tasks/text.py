"""A response string that remembers what the backend knew about it."""

from __future__ import annotations


class Generation(str):
    """A generated response, still a plain ``str`` for lm-eval, plus backend facts.

    ``error`` is set (and the text is empty) when the backend failed on this request:
    the response is scored as no answer, its token counts are unknown, and its record
    carries the error (see ``lrm_backends.cache``).

    lm-eval carries backend outputs untouched from the model to the filters and
    ``process_results``, so a ``str`` subclass is how exact token counts and finish
    reasons reach our scoring without touching the harness.

    >>> g = Generation("42</think>The answer is 42.", generated_tokens=9, finish_reason="stop")
    >>> g.upper().startswith("42"), g.generated_tokens, g.finish_reason, g.count_source
    (True, 9, 'stop', 'backend')
    >>> Generation("x").generated_tokens is None
    True
    """

    generated_tokens: int | None
    finish_reason: str | None
    count_source: str | None
    error: str | None
    max_gen_toks: int | None  # the budget the backend really gave it, when it lowered it

    def __new__(
        cls,
        text: str,
        *,
        generated_tokens: int | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        max_gen_toks: int | None = None,
    ) -> Generation:
        obj = super().__new__(cls, text)
        obj.generated_tokens = generated_tokens
        obj.finish_reason = finish_reason
        obj.count_source = "backend" if generated_tokens is not None else None
        obj.error = error
        obj.max_gen_toks = max_gen_toks
        return obj

    def __reduce__(self):  # keep the facts through pickling (multiprocessing, caches)
        return (_rebuild, (str(self), self.generated_tokens, self.finish_reason, self.error, self.max_gen_toks))


def _rebuild(
    text: str, generated_tokens: int | None, finish_reason: str | None, error: str | None = None,
    max_gen_toks: int | None = None,
) -> Generation:
    return Generation(text, generated_tokens=generated_tokens, finish_reason=finish_reason, error=error,
                      max_gen_toks=max_gen_toks)
