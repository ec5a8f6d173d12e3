"""Tokenizers by name, in one place: the run layer (token counts), ``lrm-replay``
(``tokenizer=``) and the report (re-counting runs that logged no counts) all load them here.

A name is a ``.gguf`` file (llama.cpp's vocabulary only, no weights), a folder or file
holding ``tokenizer.json`` (read with the ``tokenizers`` library, no transformers
import), or anything transformers' ``AutoTokenizer`` accepts (a folder or Hub name).
Heavy imports (llama_cpp, tokenizers, transformers) happen inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lrm_tasks.tokens import TokenCounter

GGUF_SUFFIX = ".gguf"


def is_gguf(name: str | Path) -> bool:
    """Whether ``name`` names a GGUF model file (by its suffix, any case)."""
    return str(name).lower().endswith(GGUF_SUFFIX)


def load_tokenizer(name: str | Path) -> Any:
    """An HF-style tokenizer (``tok(texts, add_special_tokens=False)["input_ids"]``,
    ``encode``, ``decode``) for ``name``: a ``.gguf`` file or a transformers name/folder.
    Raises what the loader raises."""
    if is_gguf(name):
        from lrm_backends.models.gguf import GGUFTokenizer

        return GGUFTokenizer.from_file(name)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(name))


class _EncodeAdapter:
    """Makes an ``encode(text) -> ids`` tokenizer look like a transformers one."""

    def __init__(self, encode: Callable[[str], Sequence[int]]) -> None:
        self._encode = encode

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list]:
        return {"input_ids": [self._encode(t) for t in texts]}


def load_counter(name: str) -> TokenCounter:
    """A :class:`~lrm_tasks.tokens.TokenCounter` for ``name``: a ``.gguf`` file
    (llama.cpp's vocabulary), a folder or file holding ``tokenizer.json`` (the
    ``tokenizers`` library, no transformers import), else a transformers tokenizer name
    or folder. Raises what the loader raises."""
    path = Path(name).expanduser()
    if is_gguf(name):
        tok = load_tokenizer(path)
        return TokenCounter(_EncodeAdapter(lambda t: tok.encode(t, add_special_tokens=False)), name=name)
    tok_json = path / "tokenizer.json" if path.is_dir() else path
    if tok_json.is_file() and tok_json.suffix == ".json":
        from tokenizers import Tokenizer

        return TokenCounter(Tokenizer.from_file(str(tok_json)), name=name)
    return TokenCounter.from_pretrained(name)
