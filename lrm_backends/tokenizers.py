"""Tokenizers by name, and the GGUF files behind them: one home for the run layer,
the report and the backends.

``load_tokenizer(name)`` returns a tokenizer object (a ``.gguf`` file's own vocabulary
through llama-cpp-python, else a transformers tokenizer); ``token_counter(name)`` the
:class:`lrm_tasks.tokens.TokenCounter` over it (a ``tokenizer.json`` file or folder uses
the ``tokenizers`` library alone). Heavy imports stay inside the functions.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"
# llama.cpp's split naming (llama_split_path): "<prefix>-00001-of-00003.gguf".
SPLIT_RE = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


class GGUFModelError(ValueError):
    """A GGUF path, file or context size that cannot work; raised before generating."""


def resolve_gguf_path(pretrained: str | Path) -> Path:
    """Check that ``pretrained`` is a loadable GGUF (all parts present) and return it.

    A directory holding a single model (one file or one set of parts) resolves to that
    model's file (its first part).  Raises :class:`GGUFModelError` naming the problem.
    """
    path = Path(pretrained).expanduser()
    if path.is_dir():
        ggufs = sorted(p for p in path.glob("*.gguf") if _split_no(p) in (None, 1))
        if len(ggufs) != 1:
            found = ", ".join(p.name for p in ggufs) or "no .gguf files"
            raise GGUFModelError(
                f"pretrained={pretrained} is a folder holding {found}; name one "
                f"file: pretrained={path / (ggufs[0].name if ggufs else 'MODEL.gguf')}"
            )
        path = ggufs[0]
    if not path.is_file():
        near = sorted(p.name for p in path.parent.glob("*.gguf")) if path.parent.is_dir() else []
        raise GGUFModelError(
            f"pretrained={pretrained}: no such file."
            + (f" GGUF files in {path.parent}: {', '.join(near[:10])}." if near else "")
            + " Pass pretrained=PATH.gguf (for a multi-part model, its -00001-of-0000N.gguf part)."
        )
    m = SPLIT_RE.match(path.name)
    if m:
        no, count = int(m["no"]), int(m["count"])
        first = path.with_name(f"{m['prefix']}-{1:05d}-of-{count:05d}.gguf")
        if no != 1:
            raise GGUFModelError(
                f"pretrained={pretrained} is part {no} of {count} of a split GGUF; name "
                f"the first part, pretrained={first}: llama.cpp loads the others from it."
            )
        parts = [path.with_name(f"{m['prefix']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
        missing = [p.name for p in parts if not p.is_file()]
        if missing:
            raise GGUFModelError(
                f"split GGUF {path.name} has {count} parts but {len(missing)} are missing "
                f"from {path.parent}: {', '.join(missing[:5])}. Download every part into "
                "the same folder."
            )
    else:
        parts = [path]
    for part in parts:
        with open(part, "rb") as f:
            magic = f.read(4)
        if magic != GGUF_MAGIC:
            raise GGUFModelError(
                f"{part} is not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r}). "
                "lrm-gguf needs a llama.cpp GGUF model; convert HF checkpoints with "
                "llama.cpp's convert_hf_to_gguf.py, or use --model hf for them."
            )
    return path


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_context_length(path: str | Path) -> int | None:
    """The training context (``<arch>.context_length``) from a GGUF header, or None.

    Reads the key/value section (GGUF v2/v3 layout, ggml/docs/gguf.md) only as far as
    needed, without llama.cpp: no weights, no log output.
    """
    import struct

    def read(f, fmt: str):
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    def skip_or_read(f, vtype: int):
        if vtype == _GGUF_STRING:
            return f.read(read(f, "<Q")).decode("utf-8", errors="replace")
        if vtype == _GGUF_ARRAY:
            etype, count = read(f, "<I"), read(f, "<Q")
            if etype in _GGUF_SCALARS:
                f.seek(count * struct.calcsize(_GGUF_SCALARS[etype]), 1)
            else:
                for _ in range(count):
                    skip_or_read(f, etype)
            return None
        return read(f, _GGUF_SCALARS[vtype])

    arch, lengths = None, {}
    with open(path, "rb") as f:
        if f.read(4) != GGUF_MAGIC or read(f, "<I") < 2:
            return None
        read(f, "<Q")  # tensor count
        for _ in range(read(f, "<Q")):
            key = f.read(read(f, "<Q")).decode("utf-8", errors="replace")
            value = skip_or_read(f, read(f, "<I"))
            if key == "general.architecture":
                arch = value
            elif key.endswith(".context_length"):
                lengths[key] = value
            if arch is not None and f"{arch}.context_length" in lengths:
                return int(lengths[f"{arch}.context_length"])
    return None


def _split_no(path: Path) -> int | None:
    m = SPLIT_RE.match(path.name)
    return int(m["no"]) if m else None


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            "the lrm-gguf backend needs llama-cpp-python: pip install 'lrm-bench[gguf]' "
            "(or pip install llama-cpp-python; see its README for CUDA/Metal builds)"
        ) from exc
    return llama_cpp


class GGUFTokenizer:
    """A GGUF's own tokenizer with the slice of the HF tokenizer interface that lm-eval's
    result logging and lrm-bench's token counter use (``tok(texts,
    add_special_tokens=False)["input_ids"]``, ``encode``, ``decode``, special tokens)."""

    def __init__(self, llm_getter: Any, name: str) -> None:
        self._llm = llm_getter  # () -> the current Llama: a backend may reload its own
        self.name_or_path = name
        llm = llm_getter()
        bos, eos = int(llm.token_bos()), int(llm.token_eos())
        self.bos_token_id = bos if bos >= 0 else None
        self.eos_token_id = eos if eos >= 0 else None
        self.pad_token_id = None
        self.bos_token = llm.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else None
        self.eos_token = llm.detokenize([eos], special=True).decode("utf-8", "replace") if eos >= 0 else None
        self.pad_token = None
        self.chat_template = llm.metadata.get("tokenizer.chat_template")

    @classmethod
    def from_file(cls, path: str | Path) -> GGUFTokenizer:
        """Load only the vocabulary of a GGUF (no weights)."""
        llama_cpp = _import_llama_cpp()
        resolved = resolve_gguf_path(path)
        llm = llama_cpp.Llama(model_path=str(resolved), vocab_only=True, verbose=False)
        tok = cls(lambda: llm, resolved.name)
        weakref.finalize(tok, llm.close)  # before teardown: Llama.__del__ is noisy then
        return tok

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        # special=False: text is counted as the characters it is (generated control
        # tokens render as nothing), while user-defined tokens such as </think> still
        # match as one token.
        return self._llm().tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=False)

    def __call__(self, texts: str | list[str], add_special_tokens: bool = False, **_: Any) -> dict[str, Any]:
        if isinstance(texts, str):
            return {"input_ids": self.encode(texts, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in texts]}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self._llm().detokenize(list(ids), special=not skip_special_tokens).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return int(self._llm().n_vocab())


def load_tokenizer(name: str | Path) -> Any:
    """The tokenizer named by ``name``: a ``.gguf`` file (llama.cpp's vocabulary, no
    weights) or a transformers tokenizer folder or Hub name."""
    if str(name).lower().endswith(".gguf"):
        return GGUFTokenizer.from_file(name)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(name))


def token_counter(name: str) -> Any:
    """A :class:`lrm_tasks.tokens.TokenCounter` for ``name``: a ``.gguf`` file, a folder
    or file holding ``tokenizer.json`` (the ``tokenizers`` library, no transformers
    import), else a transformers tokenizer name or folder."""
    from lrm_tasks.tokens import TokenCounter

    path = Path(name).expanduser()
    if name.lower().endswith(".gguf"):
        return TokenCounter(GGUFTokenizer.from_file(path), name=name)
    tok_json = path / "tokenizer.json" if path.is_dir() else path
    if tok_json.is_file() and tok_json.suffix == ".json":
        from tokenizers import Tokenizer

        return TokenCounter(Tokenizer.from_file(str(tok_json)), name=name)
    return TokenCounter.from_pretrained(name)
