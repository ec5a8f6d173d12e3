"""When a backend fails: the engine's fault or one request's, bounded retries, exit codes.

Two kinds of failure, told apart by :func:`classify`:

- **The engine's** (:data:`ENGINE`): the model or a replica's engine could not load or
  start, or died. Nothing that follows can heal it, so the run stops at once with one
  line (:class:`EngineFailure`: the backend, the first line of the engine's own error,
  the path of a log holding the full traceback) and exit status
  :data:`EXIT_ENGINE_FAILED`. No request is retried. Recognised by where the error was
  raised (a model constructor: lm-eval's ``LM.create_from_arg_*``, an ``__init__`` inside
  an engine package, a Ray actor's creation task), by vLLM's engine-start and
  engine-death messages, by a backend raising :class:`EngineError` itself, or, failing
  all that, by the same error on two disjoint sets of requests before any request
  succeeded (every replica's, every chunk's first requests failing alike).
- **A request's own** (:data:`REQUEST`): one bad prompt, one timeout. The request is
  isolated (``lrm_backends.run.cache.ResilientLM``), retried at most
  :attr:`FailurePolicy.max_retries` times alone with exponential backoff, then recorded
  as failed (no answer, its record carries the error) and the run goes on.

Exit status of ``lrm eval`` and of plain ``lm_eval`` (through the autoload hook): 0 when
every request got a response; :data:`EXIT_REQUESTS_FAILED` when some failed (results and
records are still written, and the console says how many and where their records are),
unless failures are allowed (``--allow-failures``, metadata ``lrm_allow_failures``,
``$LRM_ALLOW_FAILURES``); :data:`EXIT_ENGINE_FAILED` when the engine failed.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENGINE = "engine"
REQUEST = "request"

# Exit statuses (documented in the README). 1 stays Python's "uncaught exception" and
# 2 lrm's "user error", so a script can tell the three apart.
EXIT_REQUESTS_FAILED = 3
EXIT_ENGINE_FAILED = 4

MAX_RETRIES_METADATA_KEY = "lrm_max_retries"
MAX_RETRIES_ENV = "LRM_MAX_RETRIES"
ALLOW_FAILURES_METADATA_KEY = "lrm_allow_failures"
ALLOW_FAILURES_ENV = "LRM_ALLOW_FAILURES"
BACKOFF_ENV = "LRM_RETRY_BACKOFF"
ENGINE_LOG_DIR_ENV = "LRM_ENGINE_LOG_DIR"
# A request's own errors are mostly transient (a timeout, a dropped connection) or
# permanent (a prompt the model cannot take); two more tries settle the first kind
# without spending long on the second.
DEFAULT_MAX_RETRIES = 2
# Seconds before the first retry, doubled for each further one, capped: long enough for
# a transient fault to clear, short enough not to stall a run.
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
_CAUSE_MAX = 300  # characters of the engine's first error line in the one-line message
_PYDANTIC_HEADER = re.compile(r"^\d+ validation errors? for \w+$")

# Messages vLLM prints when its engine cannot start or has died (v0.6 to v0.11+).
_ENGINE_MESSAGES = (
    "Engine core initialization failed",
    "WorkerProc failed to start",
    "Engine process failed to start",
    "EngineCore encountered an issue",
    "error raised in its creation task",  # Ray: an actor's constructor raised
)
# Exception class names that mean the engine is gone, whatever the request.
_ENGINE_EXCEPTIONS = frozenset({"EngineDeadError", "EngineError", "EngineFailure"})
# Constructors that load a model or start its engine: an error raised in one of these
# __init__ is a load failure (vllm's LLM and its engine, executor and worker classes,
# llama-cpp-python's Llama). Other vllm constructors (SamplingParams) reject requests.
_CONSTRUCTOR_FRAME = re.compile(
    r'File "[^"]*[/\\](?:vllm[/\\](?:entrypoints[/\\]llm\.py|__init__\.py'
    r'|(?:v1[/\\])?(?:engine|executor|worker)[/\\][^"]*)|llama_cpp[/\\]llama\.py)", line \d+, in __init__'
)
# lm-eval builds every model through these classmethods (lm_eval/api/model.py).
_LM_EVAL_CONSTRUCTORS = ("create_from_arg_string", "create_from_arg_obj")


class EngineError(RuntimeError):
    """Raised by a backend (or its replicas) when its engine cannot load, start or serve
    any request: :func:`classify` treats it as the engine's, so nothing is retried."""


class EngineFailure(RuntimeError):
    """The run stops: the engine failed. ``str()`` is the one line the console prints."""

    def __init__(self, backend: str, cause: str, log_path: Path | None) -> None:
        self.backend, self.cause, self.log_path = backend, cause, log_path
        where = f"full log: {log_path}" if log_path else "no log could be written"
        super().__init__(
            f"the {backend} engine failed, nothing can be generated: {cause} ({where}). "
            "No request was retried; fix the cause and run the same command again "
            "(with --cache, finished responses are kept)."
        )


# --------------------------------------------------------------------- settings


@dataclass(frozen=True)
class FailurePolicy:
    """How many times a request's own failure is retried, and how long to wait."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    allow_failures: bool = False

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): backoff, doubled each time."""
        return min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))


def _non_negative(value: Any, name: str, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise ValueError(f"{name}={value!r}: expected a non-negative {kind.__name__}, e.g. {name}=2")
    return number


def policy_from(metadata: dict[str, Any] | None) -> FailurePolicy:
    """The failure policy from run metadata (``--metadata``) first, then the environment."""
    from lrm_backends.run.settings import truthy

    meta = metadata or {}
    retries = meta.get(MAX_RETRIES_METADATA_KEY, os.environ.get(MAX_RETRIES_ENV, ""))
    backoff = os.environ.get(BACKOFF_ENV, "")
    allow = meta.get(ALLOW_FAILURES_METADATA_KEY, os.environ.get(ALLOW_FAILURES_ENV, ""))
    return FailurePolicy(
        max_retries=DEFAULT_MAX_RETRIES if retries in ("", None) else _non_negative(retries, MAX_RETRIES_METADATA_KEY, int),
        backoff_s=DEFAULT_BACKOFF_S if not str(backoff).strip() else _non_negative(backoff, BACKOFF_ENV, float),
        allow_failures=truthy(allow),
    )


# ---------------------------------------------------------------- classification


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and a Ray task error's original cause."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "cause", None) if isinstance(getattr(e, "cause", None), BaseException) else None,
                 e.__cause__, e.__context__]
    return seen


def _traceback_text(exc: BaseException) -> str:
    parts = ["".join(traceback.format_exception(type(e), e, e.__traceback__)) for e in _chain(exc)]
    # Ray keeps the remote traceback as text.
    parts += [str(getattr(e, "traceback_str", "") or "") for e in _chain(exc)]
    return "\n".join(parts)


def raised_in_model_constructor(exc: BaseException) -> bool:
    """Whether ``exc`` came out of lm-eval building the model (``LM.create_from_arg_*``)."""
    for e in _chain(exc):
        for frame, _ in traceback.walk_tb(e.__traceback__):
            if frame.f_code.co_name in _LM_EVAL_CONSTRUCTORS and "lm_eval" in frame.f_code.co_filename:
                return True
    return False


def classify(exc: BaseException) -> str:
    """:data:`ENGINE` when ``exc`` says the engine cannot serve (see module doc), else
    :data:`REQUEST`. Looks at the exception alone; :class:`EarlyFailures` adds the
    "same error everywhere before any success" rule."""
    chain = _chain(exc)
    if any(type(e).__name__ in _ENGINE_EXCEPTIONS for e in chain):
        return ENGINE
    text = _traceback_text(exc)
    if any(m in text for m in _ENGINE_MESSAGES) or _CONSTRUCTOR_FRAME.search(text):
        return ENGINE
    if raised_in_model_constructor(exc):
        return ENGINE
    return REQUEST


def cause_line(exc: BaseException) -> str:
    """The first line of the engine's own error: the innermost exception of the chain."""
    chain = _chain(exc)
    # The deepest cause is the engine's own; wrappers (Ray, lm-eval) come first.
    for e in reversed(chain):
        if type(e).__name__ in ("RayTaskError",) or type(e).__name__.startswith("RayTaskError("):
            continue
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        # A Ray error's text starts with "ray::task() (pid=...)" and a traceback: take its last line.
        if lines and lines[0].startswith("ray::"):
            lines = lines[-1:]
        first = lines[0] if lines else ""
        # pydantic's "1 validation error for ModelConfig" (vLLM's engine arguments) names
        # the bad value only on its following lines: keep them on the one line.
        if _PYDANTIC_HEADER.match(first) and len(lines) > 1:
            first = f"{first}: {' '.join(lines[1:3])}"
        name = type(e).__name__
        return (f"{name}: {first}" if first and not first.startswith(name) else first or name)[:_CAUSE_MAX]
    return type(exc).__name__


def write_engine_log(exc: BaseException, backend: str, folder: str | os.PathLike[str] | None = None) -> Path | None:
    """Write the full traceback (remote ones included) to a file; its path, or None."""
    root = os.environ.get(ENGINE_LOG_DIR_ENV) or folder or Path(tempfile.gettempdir()) / "lrm-bench"
    try:
        path = Path(root).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"engine-failure-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        path.write_text(f"backend: {backend}\n\n{_traceback_text(exc)}", encoding="utf-8")
        return path
    except OSError as err:
        log.warning("lrm-bench: could not write the engine failure log under %s (%s)", root, err)
        return None


def engine_failure(exc: BaseException, backend: str, log_folder: str | os.PathLike[str] | None = None) -> EngineFailure:
    """The :class:`EngineFailure` to raise for ``exc`` (its full log written first)."""
    if isinstance(exc, EngineFailure):
        return exc
    return EngineFailure(backend, cause_line(exc), write_engine_log(exc, backend, log_folder))


def log_folder_for(tracker: Any) -> Path | None:
    """Where an engine failure's log goes: beside lm-eval's output (``--output_path``),
    else None (the temp folder)."""
    out = getattr(tracker, "output_path", None)
    if not out:
        return None
    path = Path(str(out)).expanduser()
    return path.parent if path.suffix == ".json" else path


def backend_name(lm: Any) -> str:
    """A short name for the backend of ``lm`` (the wrapped model's class)."""
    inner = getattr(lm, "lm", lm)
    return type(inner).__name__


@dataclass
class EarlyFailures:
    """Calls that failed before any request succeeded: the same error on two disjoint
    sets of requests (by request key: task, document, arguments) then means the engine,
    not the requests."""

    succeeded: bool = False
    failed: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def engine_suspected(self, exc: BaseException, request_ids: frozenset[str]) -> bool:
        """Note a failed call; True when it repeats an earlier call's error on other requests."""
        if self.succeeded:
            return False
        sig = cause_line(exc)
        hit = any(s == sig and not (ids & request_ids) for s, ids in self.failed)
        self.failed.append((sig, request_ids))
        return hit


# ------------------------------------------------------------------- exit status


@dataclass
class RunOutcome:
    """Requests of the evaluations run in this process, for the exit status."""

    failed: int = 0
    total: int = 0
    records: list[str] = field(default_factory=list)
    allow_failures: bool = False


_outcome: RunOutcome | None = None


def note_run(failed: int, total: int, records: list[str], allow_failures: bool) -> None:
    """Add one evaluation's request counts to this process's outcome."""
    global _outcome
    if _outcome is None:
        _outcome = RunOutcome()
    _outcome.failed += failed
    _outcome.total += total
    _outcome.records += [r for r in records if r not in _outcome.records]
    _outcome.allow_failures = _outcome.allow_failures or allow_failures


def take_outcome() -> RunOutcome | None:
    """This process's outcome so far, and forget it (each is reported once)."""
    global _outcome
    out, _outcome = _outcome, None
    return out


def exit_status(outcome: RunOutcome | None, stream: Any = None) -> int:
    """Say how many requests failed (and where their records are); the exit status."""
    if outcome is None or not outcome.failed:
        return 0
    stream = stream or sys.stderr
    where = ", ".join(outcome.records) if outcome.records else "no records were written"
    code = 0 if outcome.allow_failures else EXIT_REQUESTS_FAILED
    tail = "allowed by --allow-failures" if outcome.allow_failures else (
        f"exit status {code}; --allow-failures keeps 0")
    print(f"lrm-bench: {outcome.failed} of {outcome.total} requests failed; their records: {where} ({tail})",
          file=stream)
    return code


def engine_exit(exc: EngineFailure, stream: Any = None) -> int:
    """Print the engine failure's one line; the exit status for it."""
    print(f"lrm-bench: error: {exc}", file=stream or sys.stderr)
    take_outcome()
    return EXIT_ENGINE_FAILED


__all__ = [
    "ENGINE", "EXIT_ENGINE_FAILED", "EXIT_REQUESTS_FAILED", "EarlyFailures", "EngineError",
    "EngineFailure", "FailurePolicy", "REQUEST", "classify", "engine_exit", "engine_failure",
    "exit_status", "log_folder_for", "note_run", "policy_from", "take_outcome",
]
