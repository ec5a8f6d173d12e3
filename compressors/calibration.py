"""Calibration data for pruning: token windows from a text file, a Hub dataset or
caller-supplied texts (e.g. a task's own prompts), seeded.

Every source becomes one stream of text (documents joined by a blank line), tokenized
without special tokens and cut into non-overlapping windows of ``seq_len`` tokens, of
which ``num_samples`` are drawn at random with ``seed``. The same spec, tokenizer and
text give the same tensor on every machine.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# SparseGPT's defaults (arXiv 2301.00774, section 4): 128 segments of 2048 tokens.
DEFAULT_NUM_SAMPLES = 128
DEFAULT_SEQ_LEN = 2048
DEFAULT_SEED = 0
# The source when none is named: C4, as in the SparseGPT and Wanda papers.
DEFAULT_SOURCE = "c4"
DOCUMENT_SEPARATOR = "\n\n"
# Documents are tokenized one by one; a Hub dataset is read (in seeded random order)
# only until the stream holds this many times the tokens needed, so that the drawn
# windows come from many documents without tokenizing a whole C4 shard.
HUB_TOKEN_MARGIN = 4

# Named Hub sources: (dataset, config, split, text field, data_files). C4 is read from
# its first English training shard, as the SparseGPT reference (datautils.get_c4) does.
HUB_PRESETS: dict[str, tuple[str, str | None, str, str, dict[str, str] | None]] = {
    "c4": (
        "allenai/c4",
        None,
        "train",
        "text",
        {"train": "en/c4-train.00000-of-01024.json.gz"},
    ),
    "wikitext2": ("Salesforce/wikitext", "wikitext-2-raw-v1", "train", "text", None),
}
HUB_PREFIX = "hf:"
TASK_PREFIX = "task:"


@dataclass(frozen=True)
class CalibrationSpec:
    """Where calibration text comes from and how much of it to use.

    ``source`` is one of:

    - a path to a UTF-8 text file;
    - ``"c4"`` or ``"wikitext2"`` (Hub presets, see :data:`HUB_PRESETS`);
    - ``"hf:DATASET[:CONFIG[:SPLIT[:FIELD]]]"`` for any Hub dataset with a text column
      (defaults: no config, split ``train``, field ``text``);
    - ``"task:NAME"``: a task's own prompts, which the caller resolves and passes as
      ``texts`` to :func:`build_calibration` (this package does not know tasks).
    """

    source: str
    num_samples: int = DEFAULT_NUM_SAMPLES
    seq_len: int = DEFAULT_SEQ_LEN
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"calibration sample count {self.num_samples} must be at least 1, e.g. 128")
        if self.seq_len < 2:
            raise ValueError(
                f"calibration sequence length {self.seq_len} must be at least 2 tokens, e.g. 2048"
            )

    @property
    def kind(self) -> str:
        """``"file"``, ``"hub"`` or ``"task"``."""
        if self.source.startswith(TASK_PREFIX):
            return "task"
        if self.source in HUB_PRESETS or self.source.startswith(HUB_PREFIX):
            return "hub"
        return "file"


@dataclass(frozen=True)
class CalibrationData:
    """Token windows ``[num_samples, seq_len]`` and what they were drawn from."""

    input_ids: torch.Tensor
    spec: CalibrationSpec
    stream_tokens: int

    def describe(self) -> dict[str, Any]:
        """JSON-ready description for the compression manifest."""
        return {
            **asdict(self.spec),
            "kind": self.spec.kind,
            "tokens": int(self.input_ids.numel()),
            "stream_tokens": self.stream_tokens,
        }


def token_windows(ids: list[int], *, num_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """Draw ``num_samples`` distinct non-overlapping windows of ``seq_len`` tokens.

    Raises ``ValueError`` naming the shortfall when the stream is too short.
    """
    import torch

    available = len(ids) // seq_len
    if available < num_samples:
        raise ValueError(
            f"calibration text has {len(ids)} tokens, enough for {available} windows of "
            f"{seq_len} tokens, but {num_samples} were asked for; give more text, fewer "
            f"samples (at most {available}) or a shorter sequence length"
        )
    starts = sorted(random.Random(seed).sample(range(available), num_samples))
    rows = [ids[s * seq_len : (s + 1) * seq_len] for s in starts]
    return torch.tensor(rows, dtype=torch.long)


def _tokenize_stream(texts: Iterable[str], tokenizer: Any, stop_after: int | None) -> list[int]:
    ids: list[int] = []
    sep: list[int] = tokenizer(DOCUMENT_SEPARATOR, add_special_tokens=False)["input_ids"]
    for text in texts:
        if not text or not text.strip():
            continue
        if ids:
            ids.extend(sep)
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if stop_after is not None and len(ids) >= stop_after:
            break
    return ids


def read_text_file(path: str | Path) -> list[str]:
    """The documents of a text file: the whole file as one document."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"calibration source {str(path)!r} is neither a file nor a known dataset; "
            f"pass a text file, {', '.join(sorted(HUB_PRESETS))}, "
            f"'{HUB_PREFIX}DATASET[:CONFIG[:SPLIT[:FIELD]]]' or '{TASK_PREFIX}NAME'"
        )
    return [p.read_text(encoding="utf-8")]


def parse_hub_source(source: str) -> tuple[str, str | None, str, str, dict[str, str] | None]:
    """``(dataset, config, split, field, data_files)`` of a Hub source.

    >>> parse_hub_source("hf:Salesforce/wikitext:wikitext-103-raw-v1:validation")
    ('Salesforce/wikitext', 'wikitext-103-raw-v1', 'validation', 'text', None)
    >>> parse_hub_source("c4")[0]
    'allenai/c4'
    """
    if source in HUB_PRESETS:
        return HUB_PRESETS[source]
    parts = source[len(HUB_PREFIX) :].split(":")
    if not parts[0] or len(parts) > 4:
        raise ValueError(
            f"Hub calibration source {source!r} should be '{HUB_PREFIX}DATASET[:CONFIG[:SPLIT[:FIELD]]]'"
        )
    dataset = parts[0]
    config = (parts[1] or None) if len(parts) > 1 else None
    split = parts[2] if len(parts) > 2 and parts[2] else "train"
    field = parts[3] if len(parts) > 3 and parts[3] else "text"
    return dataset, config, split, field, None


def iter_hub_texts(source: str, seed: int) -> Iterator[str]:
    """Documents of a Hub dataset in seeded random order (lazy ``datasets`` import)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Hub calibration data needs the 'datasets' package: pip install datasets") from exc
    name, config, split, field, data_files = parse_hub_source(source)
    logger.info("loading calibration dataset %s (config %s, split %s)", name, config, split)
    ds = datasets.load_dataset(name, config, split=split, data_files=data_files)
    if field not in ds.column_names:
        raise ValueError(
            f"dataset {name!r} has no text field {field!r}; its columns are "
            f"{ds.column_names}; name one as '{HUB_PREFIX}{name}:{config or ''}:{split}:FIELD'"
        )
    order = list(range(len(ds)))
    random.Random(seed).shuffle(order)
    for i in order:
        yield ds[i][field]


def build_calibration(
    spec: CalibrationSpec, tokenizer: Any, texts: Iterable[str] | None = None
) -> CalibrationData:
    """Tokenize the source of ``spec`` and draw its windows.

    ``texts`` overrides the source's documents (required for ``task:`` sources; a
    caller may also pass already-loaded text, in which case ``spec.source`` only names
    it in the manifest).
    """
    needed = spec.num_samples * spec.seq_len
    stop_after: int | None = None
    if texts is None:
        if spec.kind == "task":
            raise ValueError(
                f"calibration source {spec.source!r} is a task's prompts; the caller must "
                "pass them as texts (the lrm CLI and the lrm-pruned backend do)"
            )
        if spec.kind == "hub":
            texts = iter_hub_texts(spec.source, spec.seed)
            stop_after = needed * HUB_TOKEN_MARGIN
        else:
            texts = read_text_file(spec.source)
    ids = _tokenize_stream(texts, tokenizer, stop_after)
    windows = token_windows(ids, num_samples=spec.num_samples, seq_len=spec.seq_len, seed=spec.seed)
    logger.info(
        "calibration: %d x %d tokens from %s (%d tokens available)",
        spec.num_samples,
        spec.seq_len,
        spec.source,
        len(ids),
    )
    return CalibrationData(input_ids=windows, spec=spec, stream_tokens=len(ids))
