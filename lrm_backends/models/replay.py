"""``lrm-replay``: score saved responses again, without a model.

    lm_eval --model lrm-replay --model_args responses=PATH[,tokenizer=TOK] --tasks aime24_lrm

``responses`` is a file or a folder (every ``*.jsonl`` below it) holding any of:

- lm-eval's ``samples_<task>_<date>.jsonl`` (``--log_samples`` output): the task comes
  from the file name, the key from ``doc["doc_key"]`` (else ``doc_id``), the responses
  from ``resps`` (one line per filter; the first line of a document is used);
- our per-response records and plain JSON lines: ``{"task", "doc_key" or "doc_id",
  "response"}``, where ``response`` is a string or a list (repeats); several lines for
  the same document add repeats in order (or by ``repeat``, when given).  A record
  without ``task`` matches that key in any task.  ``generated_tokens`` and
  ``finish_reason`` in a record are carried over as the original backend's facts.

Each request is matched by its task name and the document's stable key (``doc_key``,
which every lrm-bench task adds; ``doc_id`` for other tasks); the k-th repeat of a
request gets the k-th saved response.  Responses are served verbatim (stop sequences
were applied when they were generated).  Unmatched requests are an error listing how
many and which (``on_missing=noanswer`` serves an empty response instead, scored as no
answer).

Token counts: replay has no model.  A response keeps the exact count of the backend
that generated it when its record has one (``generated_tokens``, or ``total_tokens``
with ``count_source: "backend"``); otherwise ``tokenizer=`` (an HF tokenizer folder or
name, or a ``.gguf`` file) becomes ``lm.tokenizer``, which lrm-bench's token counter
uses to re-tokenize responses (``count_source: "retokenized"``).  With neither, counts
are null, never 0.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM

from lrm_tasks.text import Generation

log = logging.getLogger(__name__)

# lm-eval's log_samples file name: samples_<task>_<ISO date with '-' for ':'>.jsonl
SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.:]+)\.jsonl$")
ON_MISSING = ("error", "noanswer")
MISSING_EXAMPLES = 5  # how many unmatched requests an error names


class ReplayError(ValueError):
    """Saved responses that cannot serve the requested tasks."""


@dataclass
class Saved:
    """One saved response and what its backend knew about it."""

    order: float  # its repeat index (or position in the file)
    text: str
    generated_tokens: int | None = None
    finish_reason: str | None = None


@dataclass
class SavedDoc:
    """The saved responses of one document of one task, and where they came from."""

    source: str  # "file:line" of its first response
    file: Path
    entries: list[Saved] = field(default_factory=list)

    def ordered(self) -> list[Saved]:
        return sorted(self.entries, key=lambda e: e.order)


def _key(value: Any) -> str:
    return str(value)


class ResponseStore:
    """Saved responses indexed by (task, kind, key); kind is "doc_key" or "doc_id".

    ``task`` None means the record named no task and matches any.
    """

    def __init__(self) -> None:
        self.docs: dict[tuple[str | None, str, str], SavedDoc] = {}
        self.files: list[Path] = []
        self._seen_samples: set[tuple[str, str, str]] = set()
        self._file: Path = Path()

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> ResponseStore:
        path = Path(path).expanduser()
        store = cls()
        if path.is_dir():
            # Records (which may carry exact token counts) before lm-eval samples.
            files = sorted(
                (p for p in path.rglob("*.jsonl") if p.is_file()),
                key=lambda p: (bool(SAMPLES_RE.match(p.name)), str(p)),
            )
            if not files:
                raise ReplayError(f"responses={path} is a folder with no .jsonl files in it")
        elif path.is_file():
            files = [path]
        else:
            raise ReplayError(
                f"responses={path}: no such file or folder. Pass lm-eval samples_*.jsonl "
                "(or their folder), per-response records, or JSON lines of "
                '{"task", "doc_key", "response"}'
            )
        for f in files:
            store._load_file(f)
        store.files = files
        if not store.docs:
            raise ReplayError(f"responses={path}: found no responses in {len(files)} file(s)")
        return store

    def _load_file(self, path: Path) -> None:
        self._file = path
        m = SAMPLES_RE.match(path.name)
        file_task = m["task"] if m else None
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReplayError(f"{where}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ReplayError(f"{where}: expected a JSON object per line, got {type(row).__name__}")
                if "resps" in row and "doc" in row:
                    self._add_sample(row, file_task or row.get("task"), where)
                elif "response" in row:
                    self._add_record(row, where)
                else:
                    raise ReplayError(
                        f"{where}: unrecognised record with keys {sorted(row)[:8]}; expected "
                        "lm-eval samples (doc, resps) or a record with task, doc_key/doc_id "
                        "and response"
                    )

    def _add_sample(self, row: dict, task: str | None, where: str) -> None:
        if task is None:
            raise ReplayError(
                f"{where}: an lm-eval samples line, but the file name does not say the "
                "task (expected samples_<task>_<date>.jsonl)"
            )
        doc = row.get("doc") or {}
        kind, key = ("doc_key", _key(doc["doc_key"])) if "doc_key" in doc else ("doc_id", _key(row["doc_id"]))
        if (task, kind, key) in self._seen_samples:
            return  # the same document again, under another filter
        self._seen_samples.add((task, kind, key))
        saved = self._doc(task, kind, key, where)
        if saved is None:
            return
        resps = row["resps"]
        # generate_until: one request per document, its repeats in the inner list.
        flat = resps[0] if resps and isinstance(resps[0], list) else resps
        if not all(isinstance(r, str) for r in flat):
            raise ReplayError(
                f"{where}: resps are not generated text (a loglikelihood task?); "
                "lrm-replay replays generate_until tasks only"
            )
        base = len(saved.entries)
        saved.entries.extend(Saved(base + i, r) for i, r in enumerate(flat))

    def _add_record(self, row: dict, where: str) -> None:
        if "doc_key" in row and row["doc_key"] is not None:
            kind, key = "doc_key", _key(row["doc_key"])
        elif "doc_id" in row and row["doc_id"] is not None:
            kind, key = "doc_id", _key(row["doc_id"])
        else:
            raise ReplayError(f"{where}: the record has neither doc_key nor doc_id")
        task = row.get("task")
        saved = self._doc(task, kind, key, where)
        if saved is None:
            return
        response = row["response"]
        texts = response if isinstance(response, list) else [response]
        if not all(isinstance(t, str) for t in texts):
            raise ReplayError(f"{where}: response must be a string or a list of strings")
        repeat = next((row[k] for k in ("repeat", "repeat_idx", "sample_idx") if row.get(k) is not None), None)
        single = len(texts) == 1
        tokens = row.get("generated_tokens")
        if tokens is None and row.get("count_source") == "backend":  # lrm_record_response records
            tokens = row.get("total_tokens")
        for i, text in enumerate(texts):
            order = float(repeat) if repeat is not None and single else float(len(saved.entries))
            saved.entries.append(
                Saved(
                    order,
                    text,
                    tokens if single else None,
                    row.get("finish_reason") if single else None,
                )
            )

    def _doc(self, task: str | None, kind: str, key: str, where: str) -> SavedDoc | None:
        """The entry to add to; None when an earlier file already holds this document
        (a folder with both records and samples of one run: each response once)."""
        saved = self.docs.setdefault((task, kind, key), SavedDoc(where, self._file))
        if saved.file != self._file:
            log.debug("lrm-replay: %s repeats %s/%s from %s; ignored", where, task, key, saved.source)
            return None
        return saved

    # ------------------------------------------------------------ lookup
    def find(self, task: str | None, doc: dict | None, doc_id: int | None) -> SavedDoc | None:
        candidates = []
        if doc and doc.get("doc_key") is not None:
            candidates.append(("doc_key", _key(doc["doc_key"])))
        if doc_id is not None:
            candidates.append(("doc_id", _key(doc_id)))
        for kind, key in candidates:
            for t in (task, None):
                saved = self.docs.get((t, kind, key))
                if saved is not None:
                    return saved
        return None

    def summary(self) -> str:
        counts = Counter(task or "(any task)" for task, _, _ in self.docs)
        return ", ".join(f"{t}: {n}" for t, n in sorted(counts.items()))

_RESPONSES_HELP = (
    'Pass lm-eval samples_*.jsonl (or their folder), per-response records, or JSON lines of '
    '{"task", "doc_key", "response"}.'
)


def validate_model_args(model_args: dict[str, Any]) -> None:
    """Check ``--model_args`` for lrm-replay before anything loads (see
    :mod:`lrm_backends.run.validate`): known keys, ``on_missing`` one of its values, a
    ``.gguf`` tokenizer present, ``responses`` given, present and readable as JSON lines
    (its first line only: the whole file is read when the backend loads)."""
    from lrm_backends.errors import ValidationError, did_you_mean

    known = ("responses", "tokenizer", "on_missing", "batch_size", "max_batch_size", "device")
    for key, value in model_args.items():
        if key not in known:
            raise ValidationError(
                f"--model_args {key}={value}: the lrm-replay backend has no argument {key!r}."
                f"{did_you_mean(key, known)} It takes: {', '.join(known[:3])}. Remove it or correct the name."
            )
    on_missing = model_args.get("on_missing", "error")
    if on_missing not in ON_MISSING:
        raise ValidationError(
            f"--model_args on_missing={on_missing}: expected one of {', '.join(ON_MISSING)}."
            f"{did_you_mean(str(on_missing), ON_MISSING)}"
        )
    tokenizer = model_args.get("tokenizer")
    if tokenizer and str(tokenizer).lower().endswith(".gguf") and not Path(str(tokenizer)).expanduser().is_file():
        raise ValidationError(f"--model_args tokenizer={tokenizer}: no such .gguf file; pass the model's GGUF or an HF tokenizer name or folder.")
    responses = model_args.get("responses")
    if not responses:
        raise ValidationError(
            "--model lrm-replay needs saved responses: add --model_args responses=PATH (a "
            'samples_*.jsonl file, a folder of them, our records, or JSON lines of {"task", '
            '"doc_key", "response"}).'
        )
    path = Path(str(responses)).expanduser()
    if not path.exists():
        raise ValidationError(f"--model_args responses={responses}: no such file or folder. {_RESPONSES_HELP}")
    if path.is_dir():
        if next((p for p in path.rglob("*.jsonl") if p.is_file()), None) is None:
            raise ValidationError(
                f"--model_args responses={responses}: the folder holds no .jsonl files. {_RESPONSES_HELP}"
            )
        return
    problem = _first_line_problem(path)
    if problem:
        raise ValidationError(f"--model_args responses={responses}: {problem}. {_RESPONSES_HELP}")


def _first_line_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file of saved responses, judged by its first non-blank
    line (cheap: a samples file can be gigabytes), or None."""
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    return f"line {lineno} is not JSON ({exc.msg}); expected one JSON object per line"
                if not isinstance(row, dict):
                    return f"line {lineno} is a JSON {type(row).__name__}; expected one JSON object per line"
                return None
    except UnicodeDecodeError:
        return "not a text file (not UTF-8)"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    return "the file is empty"


class ReplayBackend(LM):
    """lm-eval model ``lrm-replay``: serves saved generations (see module docs)."""

    def __init__(
        self,
        responses: str | None = None,
        tokenizer: str | None = None,
        on_missing: str = "error",
        batch_size: Any = None,
        max_batch_size: Any = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        if not responses:
            raise ReplayError(
                "lrm-replay needs saved responses: --model_args responses=PATH "
                "(a samples_*.jsonl file, a folder of them, or JSON lines of "
                '{"task", "doc_key", "response"})'
            )
        if on_missing not in ON_MISSING:
            raise ReplayError(f"on_missing={on_missing!r}: expected one of {', '.join(ON_MISSING)}")
        self.on_missing = on_missing
        self.source = str(responses)
        self.store = ResponseStore.load(responses)
        # For lrm-bench's token counter (it re-tokenizes responses with lm.tokenizer).
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer else None
        log.info("lrm-replay: %d documents from %d file(s) (%s)", len(self.store.docs), len(self.store.files), self.store.summary())

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[Generation]:
        served: Counter = Counter()  # repeats of a request get successive responses
        ordered: dict[int, list[Saved]] = {}
        picked: list[Saved | None] = []
        missing: list[str] = []
        for req in requests:
            saved = self.store.find(req.task_name, req.doc, req.doc_id)
            label = f"{req.task_name}/{(req.doc or {}).get('doc_key', req.doc_id)}"
            k = served[label]
            served[label] += 1
            entries = ordered.setdefault(id(saved), saved.ordered()) if saved is not None else []
            if k < len(entries):
                picked.append(entries[k])
            else:
                missing.append(label if saved is None else f"{label} (repeat {k + 1}, {len(entries)} saved)")
                picked.append(None)
        if missing and self.on_missing == "error":
            raise ReplayError(
                f"lrm-replay: {len(missing)} of {len(requests)} requests have no saved "
                f"response in {self.source} (matched by task and doc_key, else doc_id), "
                f"e.g. {', '.join(missing[:MISSING_EXAMPLES])}. Saved documents per task: "
                f"{self.store.summary()}. Check the task names and keys, or pass "
                "on_missing=noanswer to score them as no answer."
            )
        if missing:
            log.warning(
                "lrm-replay: %d of %d requests have no saved response; scored as no answer",
                len(missing), len(requests),
            )
        results = []
        for req, e in zip(requests, picked):
            if e is None:  # on_missing=noanswer: empty text scores as no answer
                out = Generation("", error=f"lrm-replay: no saved response in {self.source}")
            else:  # counts only when the saved record had the original backend's count
                out = Generation(e.text, generated_tokens=e.generated_tokens, finish_reason=e.finish_reason)
            results.append(out)
            self.cache_hook.add_partial("generate_until", req.args, out)
        return results

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise ReplayError(
            "lrm-replay replays generated text only; loglikelihood (multiple-choice) "
            "tasks need a model, e.g. --model lrm-gguf or hf"
        )

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.loglikelihood(requests, disable_tqdm)

    # With --apply_chat_template lm-eval asks for these; the prompt is not used.
    @property
    def tokenizer_name(self) -> str:
        return "lrm-replay"

    def chat_template(self, chat_template: bool | str = False) -> str:
        return ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return "\n".join(m.get("content", "") for m in chat_history)


def load_tokenizer(spec: str) -> Any:
    """The tokenizer named by ``tokenizer=`` (see :func:`lrm_backends.tokenizers.load_tokenizer`)."""
    from lrm_backends.tokenizers import load_tokenizer as load

    try:
        return load(spec)
    except Exception as exc:
        raise ReplayError(
            f"tokenizer={spec!r} could not be loaded ({type(exc).__name__}: {exc}); pass "
            "an HF tokenizer folder or name, or a .gguf file"
        ) from exc
