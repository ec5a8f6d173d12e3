"""Resume a killed run: a response cache around any lm-eval backend, and per-request errors.

    lrm eval --cache DIR ...                              # lrm
    lm_eval ... --metadata '{"lrm_cache": "DIR"}'         # plain lm_eval (or LRM_CACHE_DIR=DIR)

:class:`ResilientLM` wraps the model that lm-eval's ``evaluate()`` receives (see
:class:`lrm_backends.run.evaluation.Session`). With a cache it stores every response as soon
as the backend hands it over and serves stored ones instead of generating them again.
lm-eval's own ``--use_cache`` cannot resume reasoning runs: for vllm its write key never
matches its read key, sampled requests are never cached, k repeats would collapse into
one entry (lm-eval #3046) and the key ignores the model (#4063). Here:

- **Key**: the model's identity (backend, the model arguments that change outputs, and a
  size/mtime fingerprint of local checkpoint files: one folder per model under ``DIR``),
  task, document (``doc_key``, else lm-eval's ``doc_id``), the request's arguments
  (prompt and generation arguments) and the repeat index, i.e. the request's position
  among identical requests (lm-eval sends the k repeats of a document as k identical
  requests). k sampled repeats are k entries; two models never share one.
- **As soon as generated**: lm-eval backends report each finished response through
  ``cache_hook.add_partial(method, request.args, result)``; the wrapper installs its own
  hook and stores the response right then (HF, ``lrm-gguf`` and ``lrm-vllm`` do this per
  response or per chunk). A backend whose hook calls cannot be matched to the requests
  (lm-eval's ``vllm``, which reports rewritten generation arguments) is sent requests in
  chunks of :data:`DEFAULT_CHUNK_SIZE` (``$LRM_CACHE_CHUNK``), each stored when it
  returns; the first call tells which kind the backend is.
- **Storage**: JSON lines, appended and flushed per response, fsynced after each
  backend call, one writer at a time (``flock``). A partially written last line, left by
  a killed run, is detected and cut off on the next start, never a crash.
- **Same samples after a resume**: a sampled request gets a seed derived from its key
  and repeat index, so a resumed run draws exactly what an uninterrupted one would have,
  whatever is left to generate. How it is applied depends on the backend
  (:func:`seeding_of`): vllm and ``lrm-vllm`` take it per request (``SamplingParams.seed``);
  ``lrm-gguf`` takes it per request too; HF samples from torch's global generator, so
  its sampled requests go one per call with the global generators reseeded. This holds
  with or without a cache: a run is the same run cached, uncached or resumed. Other
  backends get no seed: their stored responses are never generated again, but a resumed
  run's new samples are fresh draws.

Without a cache the wrapper still isolates backend errors: when a call fails, its
requests are retried in halves until the failing request is alone; that request is
retried alone at most ``max_retries`` times with backoff (after the rest of the call's
requests, counted in the results' ``lrm.retries``), then becomes an empty
:class:`~lrm_tasks.text.Generation` with ``error`` set (scored as no answer, recorded
with the error, counted in ``lrm.failed_requests``) and the run goes on. An error that is
the engine's (it could not load or start, or died: see ``lrm_backends.run.failures``)
is never retried: the run stops with :class:`~lrm_backends.run.failures.EngineFailure`.
Failed requests are not stored: the next run with the cache retries them.
``--strict`` (``lrm_strict`` metadata, ``LRM_STRICT=1``) aborts on the first error instead.
Only ``generate_until`` errors are isolated; likelihood requests are cached but their
errors abort.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from lm_eval.api.model import CacheHook

from lrm_backends.run.failures import (
    ENGINE, EarlyFailures, FailurePolicy, backend_name, classify, engine_failure, policy_from,
)
from lrm_backends.run.settings import setting, truthy
from lrm_tasks.text import Generation

log = logging.getLogger(__name__)

CACHE_ENV = "LRM_CACHE_DIR"
STRICT_ENV = "LRM_STRICT"
CHUNK_ENV = "LRM_CACHE_CHUNK"
CACHE_METADATA_KEY = "lrm_cache"
STRICT_METADATA_KEY = "lrm_strict"
CACHE_FORMAT = 1
# Requests per backend call for a backend whose responses only arrive when the call
# returns: a crash loses at most this many. Large enough for vllm's continuous batching
# to stay busy (its default max_num_seqs is 256 on big GPUs, 128 on small ones).
DEFAULT_CHUNK_SIZE = 128
# Model arguments that change how fast a model runs, never what it generates.
OUTPUT_NEUTRAL_ARGS = frozenset({
    "batch_size", "max_batch_size", "device", "chunk_size", "gpu_memory_utilization",
    "max_num_seqs", "data_parallel_size", "parallelize", "n_threads", "n_threads_batch",
    "verbose", "lrm_tokenizer", "use_safetensors", "load_format",
    "replicas", "ray_address",  # how the work is spread (lrm_backends.models.replicas)
})
# Local checkpoint files whose size and mtime enter the model identity (a folder
# re-saved with another sparsity at the same path is another model).
_FINGERPRINT_MAX_FILES = 200
_ERROR_TEXT_MAX = 500  # characters of a backend error kept in records and logs

# How a backend can draw a given sample again (see seeding_of).
SEED_PER_REQUEST = "request"  # honours gen_kwargs["seed"] per request, in any batch
SEED_FIRST_OF_CALL = "first-of-call"  # honours gen_kwargs["seed"] for a call's first request
SEED_GLOBAL_RNG = "global-rng"  # samples from the global torch/numpy/random generators
SEED_NONE = "none"
# lm-eval's own backends; ours declare SEEDING_ATTR on their class (lrm-gguf: per request).
_KNOWN_SEEDING = {
    # SamplingParams(seed=...) is per request (lm_eval/models/vllm_causallms.py passes
    # unknown generation kwargs to SamplingParams); lrm-vllm inherits it.
    "lm_eval.models.vllm_causallms.VLLM": SEED_PER_REQUEST,
    # transformers' generate() samples from torch's global generator.
    "lm_eval.models.huggingface.HFLM": SEED_GLOBAL_RNG,
}
SEEDING_ATTR = "lrm_seeding"  # a backend class may declare one of the modes above


class CacheError(RuntimeError):
    """The cache itself cannot be used (locked, unwritable, disk full): the run stops."""


# ----------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """What the user asked for: a cache folder (or none) and strictness."""

    cache_dir: Path | None = None
    strict: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE


def settings_from(metadata: dict[str, Any] | None) -> Settings:
    """Settings from run metadata (``--metadata``) first, then the environment."""
    meta = metadata or {}
    raw_dir = setting(meta, CACHE_METADATA_KEY, CACHE_ENV)
    strict = setting(meta, STRICT_METADATA_KEY, STRICT_ENV, "")
    chunk = os.environ.get(CHUNK_ENV, "")
    return Settings(
        cache_dir=Path(str(raw_dir)).expanduser() if raw_dir else None,
        strict=truthy(strict),
        chunk_size=int(chunk) if chunk.strip().isdigit() and int(chunk) > 0 else DEFAULT_CHUNK_SIZE,
    )


# ----------------------------------------------------------------- model identity


def _fingerprint(path: Path) -> list[list[Any]] | None:
    """Names, sizes and mtimes of a local checkpoint file or folder (top level)."""
    try:
        if path.is_file():
            st = path.stat()
            return [[path.name, st.st_size, st.st_mtime_ns]]
        if path.is_dir():
            rows = []
            for p in sorted(path.iterdir())[:_FINGERPRINT_MAX_FILES]:
                if p.is_file():
                    st = p.stat()
                    rows.append([p.name, st.st_size, st.st_mtime_ns])
            return rows
    except OSError:
        return None
    return None


def _looks_local(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or os.sep in value or value.endswith((".gguf", ".jsonl"))


def model_identity(model: Any, model_args: dict[str, Any] | str | None, lm: Any = None) -> dict[str, Any]:
    """What makes two runs' responses interchangeable: backend, output-relevant
    arguments, and the fingerprint of local checkpoint files they name."""
    if isinstance(model_args, str):
        from lm_eval.utils import simple_parse_args_string

        model_args = simple_parse_args_string(model_args)
    args = {k: v for k, v in (model_args or {}).items() if k not in OUTPUT_NEUTRAL_ARGS}
    if isinstance(model, str):
        backend = model
    else:
        inner = getattr(lm, "lm", lm) if lm is not None else model
        cls = type(inner)
        backend = f"{cls.__module__}.{cls.__qualname__}"
        for attr in ("model_args", "pretrained", "path"):
            value = getattr(inner, attr, None)
            if isinstance(value, (str, Path, dict)):
                args.setdefault(attr, value if isinstance(value, dict) else str(value))
        name = getattr(getattr(getattr(inner, "model", None), "config", None), "_name_or_path", None)
        if isinstance(name, str):
            args.setdefault("name_or_path", name)
    files = {}
    for key, value in sorted(args.items()):
        if isinstance(value, str) and _looks_local(value):
            fp = _fingerprint(Path(value).expanduser())
            if fp is not None:
                files[key] = fp
    return {"backend": backend, "args": _jsonable(args), "files": files}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=repr))


def identity_digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _slug(identity: dict[str, Any]) -> str:
    name = str(identity["args"].get("pretrained") or identity["args"].get("responses") or identity["backend"])
    name = name.rstrip("/").rsplit("/", 1)[-1] or identity["backend"]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{identity['backend']}-{name}")[:80]


# ------------------------------------------------------------------------ storage


def _dumps(obj: Any) -> str:
    # ASCII escapes keep lone surrogates and control characters of a response writable.
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"))


class ResponseCache:
    """One model's stored responses: ``<root>/<backend>-<name>-<digest>/responses*.jsonl``.

    Entries are JSON objects with ``k`` (request key), ``r`` (repeat index) and the
    response (``text`` plus ``generated_tokens``/``finish_reason``, or ``value`` for
    likelihoods). For one key and repeat the last entry wins.
    """

    def __init__(self, root: str | os.PathLike[str], identity: dict[str, Any], *, rank: int = 0, world_size: int = 1):
        self.identity = identity
        self.folder = Path(root).expanduser() / f"{_slug(identity)}-{identity_digest(identity)}"
        self.entries: dict[tuple[str, int], dict[str, Any]] = {}
        self.torn_lines = 0
        self.bad_lines = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            model_file = self.folder / "model.json"
            if not model_file.exists():
                model_file.write_text(json.dumps({"format": CACHE_FORMAT, **identity}, indent=2), encoding="utf-8")
        except OSError as exc:
            raise CacheError(
                f"cache folder {self.folder} cannot be written ({exc.strerror or exc}); pass "
                "--cache (lrm_cache / $LRM_CACHE_DIR) a folder you can write to."
            ) from exc
        name = "responses.jsonl" if world_size <= 1 else f"responses.rank{rank}.jsonl"
        self.path = self.folder / name
        self._fh: IO[str] | None = None
        self._open_for_append()
        for path in sorted(self.folder.glob("responses*.jsonl")):
            self._load(path)
        log.info(
            "lrm-bench: response cache %s holds %d responses%s", self.folder, len(self.entries),
            f" (ignored {self.torn_lines} partial last line(s) left by a killed run)" if self.torn_lines else "",
        )

    # -- loading
    def _open_for_append(self) -> None:
        try:
            fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise CacheError(f"cannot open cache file {self.path}: {exc.strerror or exc}.") from exc
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no flock (Windows): one run per cache folder is on the user
            pass
        except OSError:
            fh.close()
            raise CacheError(
                f"cache file {self.path} is in use by another running evaluation. Wait for it "
                "to finish, or give this run another --cache folder."
            ) from None
        self._fh = fh
        self._cut_torn_tail(fh)

    def _cut_torn_tail(self, fh: IO[str]) -> None:
        """A killed writer can leave half a line at the end: cut it off before appending."""
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as raw:
            raw.seek(max(0, size - 1))
            if raw.read(1) == b"\n":
                return
            # Find the last newline before the torn tail.
            block, pos = 1 << 16, size
            keep = 0
            while pos > 0:
                start = max(0, pos - block)
                raw.seek(start)
                chunk = raw.read(pos - start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                pos = start
        os.ftruncate(fd, keep)
        self.torn_lines += 1
        log.warning("lrm-bench: cut a partially written last line (%d bytes) off %s", size - keep, self.path)

    def _load(self, path: Path) -> None:
        with open(path, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = (str(entry["k"]), int(entry["r"]))
            except (ValueError, KeyError, TypeError):
                if n == len(lines):  # another rank's file, still being written
                    self.torn_lines += 1
                else:
                    self.bad_lines += 1
                    log.warning("lrm-bench: skipping unreadable line %d of cache file %s", n, path)
                continue
            self.entries[key] = entry

    # -- use
    def get(self, key: str, repeat: int) -> dict[str, Any] | None:
        return self.entries.get((key, repeat))

    def put(self, entry: dict[str, Any]) -> None:
        """Append one entry and flush it (a killed process keeps it)."""
        if self._fh is None:
            raise CacheError(f"cache file {self.path} is closed")
        try:
            self._fh.write(_dumps(entry) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise CacheError(f"cannot write to cache file {self.path}: {exc.strerror or exc}.") from exc
        self.entries[(entry["k"], entry["r"])] = entry

    def commit(self) -> None:
        """fsync: what was appended survives a machine crash too."""
        if self._fh is not None:
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise CacheError(f"cannot sync cache file {self.path}: {exc.strerror or exc}.") from exc

    def close(self) -> None:
        if self._fh is not None:
            try:
                self.commit()
            finally:
                self._fh.close()  # also releases the flock
                self._fh = None


# ------------------------------------------------------------------------ seeding


def seeding_of(lm: Any) -> str:
    """How ``lm`` (or the model it wraps) can draw a given sample again."""
    inner = lm
    for _ in range(4):  # lm-eval's CachingLM and similar wrappers keep the model as .lm
        declared = getattr(type(inner), SEEDING_ATTR, None)
        if declared:
            return str(declared)
        for cls in type(inner).__mro__:
            mode = _KNOWN_SEEDING.get(f"{cls.__module__}.{cls.__qualname__}")
            if mode:
                return mode
        nxt = inner.__dict__.get("lm") if hasattr(inner, "__dict__") else None
        if nxt is None:
            break
        inner = nxt
    return SEED_NONE


def is_sampled(gen_kwargs: Any) -> bool:
    """lm-eval's rule (models/utils.py normalize_gen_kwargs): do_sample, else temperature > 0."""
    if not isinstance(gen_kwargs, dict):
        return False
    do_sample = gen_kwargs.get("do_sample")
    if do_sample is not None:
        return bool(do_sample)
    try:
        return float(gen_kwargs.get("temperature", 0.0) or 0.0) > 0.0
    except (TypeError, ValueError):
        return False


def request_seed(key: str, repeat: int) -> int:
    """A 31-bit seed fixed by a request's key and repeat index."""
    return int(hashlib.sha256(f"{key}:{repeat}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _seed_global_generators(seed: int) -> None:
    """Reseed the generators a backend may sample from (only modules already loaded)."""
    import random

    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)  # also seeds every CUDA device


# ------------------------------------------------------------------------ requests


def _args_hash(method: str, args: Any) -> str:
    data = json.dumps([method, args], sort_keys=True, ensure_ascii=True, default=repr)
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(eq=False)
class Slot:
    """One request of one call, as the cache sees it."""

    index: int  # position in the call
    request: Any  # what is sent to the backend (with a seed when seeding)
    key: str  # hash of method, task, document and arguments
    repeat: int  # position among identical requests
    task: str | None
    doc: str | None
    sampled: bool
    seed: int | None = None
    sent: str = ""  # hash of the arguments the backend will report to its cache hook
    value: Any = None  # the response, once known
    done: bool = False

    def where(self) -> str:
        return f"task {self.task}, document {self.doc}, repeat {self.repeat}"


def _doc_name(req: Any) -> str | None:
    doc = getattr(req, "doc", None)
    if isinstance(doc, dict) and doc.get("doc_key") is not None:
        return str(doc["doc_key"])
    doc_id = getattr(req, "doc_id", None)
    return None if doc_id is None else str(doc_id)


def _with_seed(req: Any, seed: int) -> Any:
    """A copy of an lm-eval Instance whose generation kwargs carry ``seed``.

    The k repeats of a document are k references to one Instance, so it is copied,
    never changed.
    """
    context, gen_kwargs = req.args[0], req.args[1]
    try:
        return replace(req, arguments=(context, {**gen_kwargs, "seed": seed}), resps=[], filtered_resps={})
    except TypeError:  # not a dataclass: a minimal stand-in with the same args
        return _Sent(req, (context, {**gen_kwargs, "seed": seed}))


class _Sent:
    def __init__(self, original: Any, args: tuple) -> None:
        self._original, self.args, self.arguments = original, args, args

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def make_slots(method: str, requests: Sequence[Any], *, seeding: str = SEED_NONE) -> list[Slot]:
    """Key every request; the i-th of identical requests gets repeat index i."""
    seen: Counter[str] = Counter()
    slots = []
    for i, req in enumerate(requests):
        args = req.args
        task, doc = getattr(req, "task_name", None), _doc_name(req)
        key = _args_hash(method, [task, doc, getattr(req, "idx", 0), args])[:32]
        repeat = seen[key]
        seen[key] += 1
        sampled = method == "generate_until" and len(args) > 1 and is_sampled(args[1])
        slot = Slot(i, req, key, repeat, task, doc, sampled)
        if sampled and seeding in (SEED_PER_REQUEST, SEED_FIRST_OF_CALL):
            slot.seed = request_seed(key, repeat)
            slot.request = _with_seed(req, slot.seed)
        elif sampled and seeding == SEED_GLOBAL_RNG:
            slot.seed = request_seed(key, repeat)
        slot.sent = _args_hash(method, slot.request.args)
        slots.append(slot)
    return slots


# ------------------------------------------------------------------------ entries


def _entry(method: str, slot: Slot, value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"k": slot.key, "r": slot.repeat, "m": method, "task": slot.task, "doc": slot.doc}
    if method == "generate_until":
        entry["text"] = str(value)
        entry["generated_tokens"] = getattr(value, "generated_tokens", None)
        entry["finish_reason"] = getattr(value, "finish_reason", None)
        if getattr(value, "max_gen_toks", None) is not None:
            entry["max_gen_toks"] = value.max_gen_toks
    else:
        entry["value"] = list(value) if isinstance(value, tuple) else value
    if slot.seed is not None:
        entry["seed"] = slot.seed
    return entry


def _from_entry(method: str, entry: dict[str, Any]) -> Any:
    if method == "generate_until":
        return Generation(entry["text"], generated_tokens=entry.get("generated_tokens"),
                          finish_reason=entry.get("finish_reason"), max_gen_toks=entry.get("max_gen_toks"))
    value = entry["value"]
    return tuple(value) if isinstance(value, list) else value


@dataclass
class Failure:
    task: str | None
    doc: str | None
    repeat: int
    error: str


class _StoreHook(CacheHook):
    """lm-eval's per-response cache hook, pointed at the wrapper (and the previous hook)."""

    def __init__(self, owner: ResilientLM, previous: Any) -> None:
        super().__init__(None)
        self._owner, self._previous = owner, previous

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if self._previous is not None:
            self._previous.add_partial(attr, req, res)
        self._owner._on_partial(attr, req, res)


# ------------------------------------------------------------------------ wrapper


class ResilientLM:
    """An lm-eval model wrapper: cached responses in, new responses stored as they come,
    one request's backend error recorded instead of ending the run (see module doc).

    Everything else (rank, tokenizer_name, apply_chat_template, ...) is the wrapped
    model's.
    """

    def __init__(self, lm: Any, *, cache: ResponseCache | None = None, strict: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, policy: FailurePolicy | None = None,
                 log_folder: str | os.PathLike[str] | None = None) -> None:
        self.lm = lm
        self.cache = cache
        self.strict = strict
        self.policy = policy or policy_from(None)
        self.log_folder = log_folder  # where an engine failure's full log goes (None: temp)
        self._early = EarlyFailures()
        self._retry: list[tuple[Slot, str]] = []  # requests that failed alone, to retry
        self.max_retries = self.policy.max_retries
        if self.max_retries and reloads_per_call(lm):
            log.warning(
                "lrm-bench: %s loads the model on every call (lm-eval's vllm data-parallel path), so a "
                "failed request is not retried (a retry would reload the model); lrm-vllm loads replicas once.",
                type(getattr(lm, "lm", lm)).__name__,
            )
            self.max_retries = 0
        self.chunk_size = max(1, int(chunk_size))
        self.seeding = seeding_of(lm)
        # Seeds come from each request's key with or without a cache, so a run is the same
        # run cached, uncached or resumed; where that costs batching (one sampled request
        # per call), say so once.
        if self.seeding in (SEED_FIRST_OF_CALL, SEED_GLOBAL_RNG):
            log.info("lrm-bench: %s samples from one generator: sampled requests go one per call, each "
                     "seeded from its key (the same samples with or without --cache)",
                     type(getattr(lm, "lm", lm)).__name__)
        self.failures: list[Failure] = []
        self.stats: Counter[str] = Counter()
        self._pending: dict[str, deque[Slot]] = defaultdict(deque)
        self._method = ""
        self._streams: bool | None = None  # does the backend report each response as it goes?
        self._previous_hook = getattr(lm, "cache_hook", None)
        if hasattr(lm, "set_cache_hook"):
            lm.set_cache_hook(_StoreHook(self, self._previous_hook))
        if cache is not None and self.seeding == SEED_NONE:
            log.warning(
                "lrm-bench: %s takes no per-request seed; stored responses are never generated "
                "again, but sampled responses generated after a resume are fresh draws.",
                type(getattr(lm, "lm", lm)).__name__,
            )

    def __getattr__(self, name: str) -> Any:
        if name == "lm":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.lm, name)

    def close(self) -> None:
        """Give the wrapped model its own cache hook back; close the cache."""
        if hasattr(self.lm, "set_cache_hook") and self._previous_hook is not None:
            self.lm.set_cache_hook(self._previous_hook)
        if self.cache is not None:
            self.cache.close()

    # -- the three request types
    def generate_until(self, requests: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return self._run("generate_until", requests, args, kwargs)

    def loglikelihood(self, requests: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return self._run("loglikelihood", requests, args, kwargs)

    def loglikelihood_rolling(self, requests: list[Any], *args: Any, **kwargs: Any) -> list[Any]:
        return self._run("loglikelihood_rolling", requests, args, kwargs)

    # -- machinery
    def _run(self, method: str, requests: list[Any], args: tuple, kwargs: dict) -> list[Any]:
        slots = make_slots(method, requests, seeding=self.seeding)
        todo = []
        for slot in slots:
            entry = self.cache.get(slot.key, slot.repeat) if self.cache is not None else None
            if entry is not None and entry.get("m", method) == method:
                slot.value, slot.done = _from_entry(method, entry), True
                self.stats["cached"] += 1
            else:
                todo.append(slot)
        if self.cache is not None and slots:
            log.info("lrm-bench: %s: %d of %d responses from the cache, %d to generate",
                     method, len(slots) - len(todo), len(slots), len(todo))
        self._method = method
        if method == "generate_until":
            self.stats["requests"] += len(slots)
        for group in self._groups(todo):
            self._call(method, group, args, kwargs)
        self._retry_alone(method, args, kwargs)
        return [slot.value for slot in slots]

    def _groups(self, todo: list[Slot]) -> Iterator[list[Slot]]:
        """Backend calls: one per sampled request where seeding needs it; else chunks
        (until the backend has shown it reports each response through the hook)."""
        one_by_one = self.seeding in (SEED_FIRST_OF_CALL, SEED_GLOBAL_RNG)
        batch: list[Slot] = []
        for slot in todo:
            if one_by_one and slot.sampled:
                yield [slot]
            else:
                batch.append(slot)
        while batch:
            if self.cache is None or self._streams:
                size = len(batch)
            else:
                size = self.chunk_size
            group, batch = batch[:size], batch[size:]
            yield group

    def _call(self, method: str, group: list[Slot], args: tuple, kwargs: dict) -> None:
        group = [s for s in group if not s.done]
        if not group:
            return
        if self.seeding == SEED_GLOBAL_RNG and len(group) == 1 and group[0].seed is not None:
            _seed_global_generators(group[0].seed)
        for slot in group:
            self._pending[slot.sent].append(slot)
        try:
            out = getattr(self.lm, method)([s.request for s in group], *args, **kwargs)
        except CacheError:
            raise
        except Exception as exc:
            self._forget(group)
            self._failed(method, group, exc, args, kwargs)
            return
        finally:
            if self.cache is not None:
                self.cache.commit()
        self._early.succeeded = True
        self._forget(group)
        if self._streams is None and self.cache is not None and len(group) > 1:
            self._streams = all(s.done for s in group)
        self._settle(method, group, list(out))

    def _forget(self, group: list[Slot]) -> None:
        for slot in group:
            queue = self._pending.get(slot.sent)
            if queue is not None:
                try:
                    queue.remove(slot)
                except ValueError:
                    pass
                if not queue:
                    del self._pending[slot.sent]

    def _on_partial(self, method: str, args: Any, result: Any) -> None:
        """The backend finished one response: store it now."""
        if method != self._method:
            return
        try:
            queue = self._pending.get(_args_hash(method, args))
        except Exception:  # unhashable arguments: the call's return value will do
            return
        if queue:
            self._early.succeeded = True
            self._store(method, queue.popleft(), result)

    def _store(self, method: str, slot: Slot, value: Any, *, again: bool = False) -> None:
        # Through JSON and back, as a resumed run will read it: a text holding a surrogate
        # pair as two code points comes back as one character, in this run as in that one.
        entry = json.loads(_dumps(_entry(method, slot, value)))
        if self.cache is not None:
            self.cache.put(entry)
        slot.value, slot.done = _from_entry(method, entry), True
        if not again:
            self.stats["generated"] += 1

    def _settle(self, method: str, group: list[Slot], out: list[Any]) -> None:
        """Match a call's return values to its requests, keeping what the hook stored."""
        if len(out) != len(group):
            raise RuntimeError(
                f"{type(self.lm).__name__}.{method} returned {len(out)} results for {len(group)} requests"
            )
        by_args: dict[str, list[tuple[Slot, Any]]] = defaultdict(list)
        for slot, value in zip(group, out):
            by_args[slot.sent].append((slot, value))
        for pairs in by_args.values():
            # Identical requests have interchangeable responses: the hook may have
            # stored them in completion order; the rest get the returned values left.
            remaining = [value for _, value in pairs]
            consistent = True
            for slot, _ in pairs:
                if slot.done:
                    i = next((i for i, v in enumerate(remaining) if _plain(v) == _plain(slot.value)), None)
                    if i is None:
                        consistent = False
                        break
                    remaining.pop(i)
            if not consistent:  # the hook saw other text than was returned: the return wins
                for slot, value in pairs:
                    self._store(method, slot, value, again=slot.done)
                continue
            left = iter(remaining)
            for slot, _ in pairs:
                if not slot.done:
                    self._store(method, slot, next(left))

    def _failed(self, method: str, group: list[Slot], exc: Exception, args: tuple, kwargs: dict) -> None:
        open_ = [s for s in group if not s.done]
        # Keys, not slots: the k repeats of one bad prompt share a key, so they never
        # look like "the same error on other requests".
        ids = frozenset(s.key for s in open_)
        if classify(exc) == ENGINE or self._early.engine_suspected(exc, ids):
            # The engine cannot serve: no request is retried, the run stops with one line.
            raise engine_failure(exc, backend_name(self.lm), self.log_folder) from exc
        if self.strict or method != "generate_until":
            first = open_[0] if open_ else group[0]
            log.error("lrm-bench: the backend failed on %s (%d request(s) in the call)", first.where(), len(group))
            raise exc
        if len(open_) > 1:
            half = len(open_) // 2
            for part in (open_[:half], open_[half:]):
                self._call(method, part, args, kwargs)
            return
        for slot in open_:
            message = f"{type(exc).__name__}: {exc}"[:_ERROR_TEXT_MAX]
            if self.max_retries > 0:
                self._retry.append((slot, message))  # after the rest: backoff, then alone again
                continue
            self._give_up(slot, message)

    def _retry_alone(self, method: str, args: tuple, kwargs: dict) -> None:
        """Retry each request that failed alone, at most ``max_retries`` times, with
        backoff; then record it as failed. Never reloads the model."""
        todo, self._retry = self._retry, []
        for slot, message in todo:
            for attempt in range(1, self.max_retries + 1):
                time.sleep(self.policy.delay(attempt))
                self.stats["retries"] += 1
                log.info("lrm-bench: retry %d of %d for %s", attempt, self.max_retries, slot.where())
                error = self._attempt(method, slot, args, kwargs)
                if error is None:
                    self.stats["recovered"] += 1
                    break
                message = error
            else:
                self._give_up(slot, message)

    def _attempt(self, method: str, slot: Slot, args: tuple, kwargs: dict) -> str | None:
        """Send one request alone; None when it got a response, else the error text."""
        self._pending[slot.sent].append(slot)
        try:
            out = getattr(self.lm, method)([slot.request], *args, **kwargs)
        except CacheError:
            raise
        except Exception as exc:
            self._forget([slot])
            if classify(exc) == ENGINE:
                raise engine_failure(exc, backend_name(self.lm), self.log_folder) from exc
            return f"{type(exc).__name__}: {exc}"[:_ERROR_TEXT_MAX]
        finally:
            if self.cache is not None:
                self.cache.commit()
        self._forget([slot])
        self._settle(method, [slot], list(out))
        return None

    def _give_up(self, slot: Slot, message: str) -> None:
        """Record ``slot`` as failed: no answer, the error in its record."""
        slot.value, slot.done = Generation("", error=message), True
        self.failures.append(Failure(slot.task, slot.doc, slot.repeat, message))
        self.stats["failed"] += 1
        log.warning("lrm-bench: the backend failed on %s (%s); recorded as no answer, the run goes on "
                    "(--strict aborts instead)", slot.where(), message)

    # -- reporting
    def summary(self) -> dict[str, Any]:
        """What goes into the results as ``lrm``: failures per task, cache use."""
        per_task: Counter[str] = Counter(f.task or "?" for f in self.failures)
        out: dict[str, Any] = {
            "failed_requests": sum(per_task.values()),
            "failed_by_task": dict(per_task),
            "responses_generated": self.stats["generated"],
            "requests": self.stats["requests"],
            "retries": self.stats["retries"],
            "recovered_by_retry": self.stats["recovered"],
            "max_retries": self.max_retries,
        }
        if self.cache is not None:
            out["cache"] = {"folder": str(self.cache.folder), "responses_from_cache": self.stats["cached"]}
        backend_summary = getattr(self.lm, "lrm_summary", None)  # e.g. replicas: loads, retries
        if callable(backend_summary):
            out.update(backend_summary() or {})
        return out


def reloads_per_call(lm: Any) -> bool:
    """Whether each backend call loads the model again: lm-eval's own vllm data-parallel
    path (``VLLM._model_generate`` starts fresh Ray replicas per call), unless a backend
    declares otherwise with a ``lrm_reloads_per_call`` attribute."""
    inner = getattr(lm, "lm", lm)
    declared = getattr(inner, "lrm_reloads_per_call", None)
    if declared is not None:
        return bool(declared)
    generate = getattr(type(inner), "_model_generate", None)
    return (int(getattr(inner, "data_parallel_size", 1) or 1) > 1
            and getattr(generate, "__module__", "") == "lm_eval.models.vllm_causallms")


def _plain(value: Any) -> Any:
    """Compare responses by text (a Generation equals the str it carries)."""
    return str(value) if isinstance(value, str) else value


def open_cache(settings: Settings, model: Any, model_args: Any, lm: Any) -> ResponseCache | None:
    """The cache for this model under ``settings.cache_dir`` (None without one)."""
    if settings.cache_dir is None:
        return None
    rank = int(getattr(lm, "rank", 0) or 0)
    world = int(getattr(lm, "world_size", 1) or 1)
    return ResponseCache(settings.cache_dir, model_identity(model, model_args, lm), rank=rank, world_size=world)


__all__ = [
    "CACHE_ENV", "CacheError", "DEFAULT_CHUNK_SIZE", "Failure", "ResilientLM", "ResponseCache",
    "Settings", "model_identity", "open_cache", "seeding_of", "settings_from",
]
