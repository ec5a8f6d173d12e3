"""Reading run folders: lm-eval's ``results_*.json`` and ``samples_*.jsonl``, our
``lrm_responses_*.jsonl`` records and ``compression.json`` manifests, into :class:`Run`.

One *run* is one lm-eval evaluation: a ``results_<date>.json`` with the
``samples_<task>_<date>.jsonl`` of the same date. Our recorder stamps its files with the
time the evaluation *started*, so a records file belongs to the first results file of
its folder dated at or after it. Per task, the richest source wins:

1. our records (one line per response, exact token counts and finish reasons);
2. lm-eval's samples (one line per question and filter; responses re-scored with
   :func:`lrm_tasks.scoring.score` when a question has several, token counts
   re-tokenized with the model's tokenizer when the run did not log them);
3. the aggregate numbers of ``results_*.json`` alone (main table only).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_TS = r"\d{4}-\d{2}-\d{2}T[\d\-.:]+"
RESULTS_RE = re.compile(rf"^results_(?P<ts>{_TS})\.json$")
SAMPLES_RE = re.compile(rf"^samples_(?P<task>.+)_(?P<ts>{_TS})\.jsonl$")
RECORDS_RE = re.compile(rf"^lrm_responses_(?P<task>.+)_(?P<ts>{_TS})\.jsonl$")
# Where `lrm compress` leaves its manifest (compressors/manifest.py): inside a model
# folder, or beside a single-file model as <file>.compression.json.
MANIFEST_NAME = "compression.json"
SIDECAR_SUFFIX = ".compression.json"
# lm-eval filter names: ours first, then the harness's usual pair (gsm8k, bbh, ...).
STRICT_FILTERS = ("strict", "strict-match")
FLEXIBLE_FILTERS = ("flexible", "flexible-extract")
# model_args keys that name the model itself (the rest, e.g. dtype or seed, do not).
MODEL_PATH_ARGS = ("pretrained", "model", "model_path", "path", "responses", "engine")
TOKENIZER_ARGS = ("lrm_tokenizer", "tokenizer", "pretrained")
TOKENIZER_ENV = "LRM_TOKENIZER"
RECORD_VERSIONS = (1,)

FIELDS = (
    "correct_strict", "correct_flexible", "no_answer_strict", "no_answer_flexible",
    "f1_strict", "f1_flexible", "reasoning_tokens", "total_tokens", "truncated",
    # overthinking measures (lrm_tasks.overthinking), records only
    "first_answer_tokens", "reasoning_after_first_answer", "answer_switches", "looping",
)
RECORDS, SAMPLES, RESULTS = "records", "samples", "results"


class ReportError(Exception):
    """A run folder or option that the report cannot use; the message names it."""


Warn = Callable[[str], None]


@dataclass
class Responses:
    """Per-response columns (one entry per response; None = unknown)."""

    doc_keys: list[str] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=lambda: {f: [] for f in FIELDS})

    def add(self, doc_key: str, values: dict[str, float | None]) -> None:
        self.doc_keys.append(doc_key)
        for name, col in self.columns.items():
            col.append(values.get(name))

    def extend(self, other: Responses) -> None:
        self.doc_keys.extend(other.doc_keys)
        for name, col in self.columns.items():
            col.extend(other.columns[name])

    def __len__(self) -> int:
        return len(self.doc_keys)


@dataclass
class TaskRun:
    """One task of one run."""

    task: str
    source: str  # RECORDS | SAMPLES | RESULTS
    responses: Responses | None
    aggregate: dict[str, float | None] = field(default_factory=dict)  # from results_*.json
    n_docs: int | None = None
    repeats: int = 1
    max_gen_toks: int | None = None
    file: Path | None = None


@dataclass
class Run:
    """One evaluation: a results file (or, without one, a set of records files)."""

    run_dir: str  # the RUN_DIR argument it was found under, as given
    path: Path  # its results file, or its first records file
    timestamp: str
    model: str | None  # lm-eval backend name ("hf", "lrm-gguf", ...)
    model_args: dict[str, Any]
    seeds: dict[str, Any]
    tasks: dict[str, TaskRun]
    model_name: str | None = None  # results' model_name
    manifest: dict[str, Any] | None = None
    manifest_path: Path | None = None
    label: str | None = None  # from --label

    @property
    def model_ref(self) -> str:
        """The model's path or name as the run gave it."""
        for key in MODEL_PATH_ARGS:
            value = self.model_args.get(key)
            if isinstance(value, str) and value:
                return value
        return self.model_name or self.model or "model"

    @property
    def identity(self) -> str:
        """Runs with the same identity are the same model (pooled as repeats)."""
        return f"{self.model or '?'}:{self.model_ref}"


# ---------------------------------------------------------------- small helpers


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if value == value else None
    return None


def _flag(value: Any) -> float | None:
    return None if value is None else (1.0 if value else 0.0)


def parse_model_args(value: Any) -> dict[str, Any]:
    """lm-eval stores ``model_args`` as a dict or as ``"k=v,k=v"``.

    >>> parse_model_args("pretrained=/m/x,dtype=bfloat16")
    {'pretrained': '/m/x', 'dtype': 'bfloat16'}
    """
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str) and value.strip():
        out: dict[str, Any] = {}
        for part in value.split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
        return out
    return {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read as JSON ({exc})") from None


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReportError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if isinstance(row, dict):
                yield lineno, row


# ---------------------------------------------------------------- tokenizers


class Tokenizers:
    """Loads each named tokenizer once, for re-tokenizing runs that logged no counts."""

    def __init__(self, override: str | None, warn: Warn) -> None:
        self.override = override or os.environ.get(TOKENIZER_ENV) or None
        self.warn = warn
        self._cache: dict[str, Any] = {}

    def name_for(self, run: Run) -> str | None:
        if self.override:
            return self.override
        for key in TOKENIZER_ARGS:
            value = run.model_args.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def get(self, run: Run) -> Any | None:
        """A :class:`~lrm_tasks.tokens.TokenCounter` for the run's model, or None."""
        name = self.name_for(run)
        if name is None:
            return None
        if name not in self._cache:
            try:
                self._cache[name] = load_counter(name)
            except Exception as exc:  # any loader failure: counts stay unknown, said once
                self.warn(
                    f"cannot load tokenizer {name!r} to count the tokens of {run.path} "
                    f"({type(exc).__name__}: {exc}); token counts stay unknown. Pass --tokenizer."
                )
                self._cache[name] = None
        return self._cache[name]


def load_counter(name: str) -> Any:
    """A TokenCounter for ``name`` (see :func:`lrm_backends.tokenizers.token_counter`)."""
    from lrm_backends.tokenizers import token_counter

    return token_counter(name)


# ---------------------------------------------------------------- records and samples


def read_records(path: Path, warn: Warn) -> Responses:
    """Our per-response records (``lrm_tasks.records.build_record``)."""
    out = Responses()
    newer = False
    errors = 0
    for lineno, rec in _jsonl(path):
        if rec.get("record_version") not in RECORD_VERSIONS:
            newer = True
        errors += rec.get("error") is not None
        key = rec.get("doc_key")
        out.add(f"line-{lineno}" if key is None else str(key), {  # no key: its own question
            "correct_strict": _flag(rec.get("correct_strict")),
            "correct_flexible": _flag(rec.get("correct_flexible")),
            "no_answer_strict": (1.0 if rec["answer_strict"] is None else 0.0) if "answer_strict" in rec else None,
            "no_answer_flexible": (1.0 if rec["answer_flexible"] is None else 0.0) if "answer_flexible" in rec else None,
            "f1_strict": _num(rec.get("f1_strict")),
            "f1_flexible": _num(rec.get("f1_flexible")),
            "reasoning_tokens": _num(rec.get("reasoning_tokens")),
            "total_tokens": _num(rec.get("total_tokens")),
            "truncated": _flag(rec.get("truncated")),
            "first_answer_tokens": _num(rec.get("first_answer_tokens")),
            "reasoning_after_first_answer": _num(rec.get("reasoning_after_first_answer")),
            "answer_switches": _num(rec.get("answer_switches")),
            "looping": _flag(rec.get("looping")),
        })
    if newer:
        warn(f"{path}: record_version other than {RECORD_VERSIONS}; read as version 1")
    if errors:
        warn(f"{path}: {errors} of {len(out)} responses failed in the backend (scored as no answer)")
    return out


def _pick_filter(names: Sequence[str], preferred: Sequence[str], default: str) -> str:
    return next((n for n in preferred if n in names), default)


def _flat_resps(row: dict[str, Any]) -> list[str]:
    resps = row.get("resps") or []
    flat = resps[0] if resps and isinstance(resps[0], list) else resps
    return [r for r in flat if isinstance(r, str)]


def _canonical(task: str) -> str | None:
    from lrm_tasks.scoring import canonical_task

    try:
        return canonical_task(task)
    except ValueError:
        return None


def read_samples(path: Path, task: str, counter: Any | None, max_gen_toks: int | None, warn: Warn) -> Responses | None:
    """lm-eval's ``samples_<task>_*.jsonl``: per-response rows.

    One response per question: the logged metrics as they are. Several (repeats): each
    of our tasks' responses is scored again from the logged document; another task's
    question becomes one row with the mean correctness. Token counts missing from the
    log are counted with ``counter`` (the model's tokenizer) when there is one.
    """
    by_filter: dict[str, dict[Any, dict[str, Any]]] = {}
    for _, row in _jsonl(path):
        by_filter.setdefault(str(row.get("filter", "none")), {})[row.get("doc_id")] = row
    if not by_filter:
        return None
    names = list(by_filter)
    strict = _pick_filter(names, STRICT_FILTERS, names[0])
    flexible = _pick_filter(names, FLEXIBLE_FILTERS, strict)
    canonical = _canonical(task)
    out = Responses()
    texts: list[str | None] = []
    fallback: dict[int, dict[str, float | None]] = {}  # question means, for repeats left uncounted
    missing_metric = False
    for doc_id, row in by_filter[strict].items():
        frow = by_filter[flexible].get(doc_id, row)
        doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
        key = str(doc.get("doc_key", doc_id))
        resps = _flat_resps(row)
        if "exact_match" not in row:
            missing_metric = True
            continue
        doc_values = {
            "reasoning_tokens": _num(row.get("reasoning_tokens")),
            "total_tokens": _num(row.get("total_tokens")),
            "truncated": _num(row.get("truncated")),
        }
        if len(resps) > 1 and canonical is not None:
            from lrm_tasks.scoring import score

            for text in resps:
                sc = score(task, text, doc)
                if doc_values["total_tokens"] is not None:
                    fallback[len(out)] = doc_values
                out.add(key, {
                    "correct_strict": float(sc.correct_strict), "correct_flexible": float(sc.correct_flexible),
                    "no_answer_strict": float(sc.answer_strict is None),
                    "no_answer_flexible": float(sc.answer_flexible is None),
                    "f1_strict": sc.f1_strict, "f1_flexible": sc.f1_flexible,
                })
                texts.append(text)
            continue
        out.add(key, {
            "correct_strict": _num(row.get("exact_match")), "correct_flexible": _num(frow.get("exact_match")),
            "no_answer_strict": _num(row.get("no_answer")), "no_answer_flexible": _num(frow.get("no_answer")),
            "f1_strict": _num(row.get("f1")), "f1_flexible": _num(frow.get("f1")),
            **doc_values,
        })
        texts.append(resps[0] if len(resps) == 1 else None)
    if missing_metric:
        warn(f"{path}: some questions have no exact_match metric; they are left out")
    _retokenize(out, texts, counter, max_gen_toks)
    approx = [i for i in fallback if out.columns["total_tokens"][i] is None]
    for i in approx:
        for name, value in fallback[i].items():
            out.columns[name][i] = value
    if approx:
        warn(
            f"{path}: several responses per question and no tokenizer: {len(approx)} responses "
            "get their question's mean token count (pass --tokenizer for exact lengths)"
        )
    return out


def _retokenize(out: Responses, texts: list[str | None], counter: Any | None, max_gen_toks: int | None) -> None:
    """Fill unknown token counts by counting the response texts with ``counter``."""
    total = out.columns["total_tokens"]
    todo = [i for i, t in enumerate(texts) if t is not None and total[i] is None]
    if not todo or counter is None or not counter.has_tokenizer:
        return
    counts = counter.count([texts[i] for i in todo], max_gen_toks=max_gen_toks)
    for i, c in zip(todo, counts):
        out.columns["reasoning_tokens"][i] = _num(c.reasoning_tokens)
        total[i] = _num(c.total_tokens)
        if out.columns["truncated"][i] is None:
            out.columns["truncated"][i] = _flag(c.truncated)


# ---------------------------------------------------------------- results files


def _aggregate(res: dict[str, Any]) -> dict[str, float | None]:
    """The per-task numbers of ``results_*.json`` under our names (``score_strict``...)."""
    names = {key.split(",", 1)[1] for key in res if "," in key}
    strict = _pick_filter(sorted(names), STRICT_FILTERS, next(iter(sorted(names)), "none"))
    flexible = _pick_filter(sorted(names), FLEXIBLE_FILTERS, strict)
    out: dict[str, float | None] = {}
    for metric, ours in (("exact_match", "score"), ("f1", "f1"), ("no_answer", "no_answer"),
                         ("reasoning_tokens", "mean_reasoning_tokens"), ("total_tokens", "mean_total_tokens"),
                         ("truncated", "truncation_rate")):
        for mode, filt in (("strict", strict), ("flexible", flexible)):
            if f"{metric},{filt}" in res:
                out[f"{ours}_{mode}"] = _num(res[f"{metric},{filt}"])
                out[f"{ours}_{mode}_se"] = _num(res.get(f"{metric}_stderr,{filt}"))
    return out


def _seeds(config: dict[str, Any], model_args: dict[str, Any]) -> dict[str, Any]:
    seeds = {k: config[k] for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed") if k in config}
    if "seed" in model_args:
        seeds["model_seed"] = model_args["seed"]
    gen = config.get("gen_kwargs")
    if isinstance(gen, dict) and "seed" in gen:
        seeds["gen_seed"] = gen["seed"]
    return seeds


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _run_from_results(run_dir: str, path: Path) -> tuple[Run, dict[str, dict[str, Any]]]:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportError(f"{path}: not an lm-eval results file (no 'results' object)")
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_args = parse_model_args(config.get("model_args"))
    groups = set(data.get("group_subtasks") or {}) | set(data.get("groups") or {})
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    meta: dict[str, dict[str, Any]] = {}
    for task, res in data["results"].items():
        if task in groups or not isinstance(res, dict):
            continue
        cfg = configs.get(task) or {}
        gen = cfg.get("generation_kwargs") or {}
        ns = n_samples.get(task) or {}
        meta[task] = {
            "aggregate": _aggregate(res),
            "n_docs": _int(ns.get("effective", res.get("sample_len"))),
            "repeats": _int(cfg.get("repeats")) or 1,
            "max_gen_toks": _int(gen.get("max_gen_toks")),
        }
    m = RESULTS_RE.match(path.name)
    run = Run(
        run_dir=run_dir, path=path, timestamp=m["ts"] if m else "", model=config.get("model"),
        model_args=model_args, seeds=_seeds(config, model_args), tasks={}, model_name=data.get("model_name"),
    )
    return run, meta


# ---------------------------------------------------------------- run folders


def _manifest(run: Run, folder: Path, run_dir: Path, warn: Warn) -> None:
    """Find and read the model's ``compression.json``, if it has one."""
    ref = run.model_ref
    candidates = [folder / MANIFEST_NAME, run_dir / MANIFEST_NAME]
    ref_path = Path(ref).expanduser()
    if ref_path.is_dir():
        candidates.append(ref_path / MANIFEST_NAME)
    elif ref.lower().endswith(".gguf") or ref_path.is_file():
        candidates.append(ref_path.with_name(ref_path.name + SIDECAR_SUFFIX))
    for cand in candidates:
        if cand.is_file():
            try:
                data = json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                warn(f"{cand}: unreadable compression manifest ({exc}); compression read from the model name")
                return
            if isinstance(data, dict):
                run.manifest, run.manifest_path = data, cand
            else:
                warn(f"{cand}: a compression manifest should be a JSON object; ignored")
            return


def _candidate_folders(run_dir: Path) -> list[Path]:
    """The folder and its subfolders up to two levels (lm-eval writes results under
    ``<output_path>/<model_name_sanitized>/``)."""
    folders = [run_dir]
    for child in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        folders.append(child)
        folders.extend(sorted(p for p in child.iterdir() if p.is_dir()))
    return folders


def load_run_dir(run_dir: str, tokenizers: Tokenizers, warn: Warn) -> list[Run]:
    """Every run under one RUN_DIR argument (a folder, or one results file)."""
    root = Path(run_dir).expanduser()
    if not root.exists():
        raise ReportError(f"{run_dir}: no such file or folder")
    if root.is_file():
        if not RESULTS_RE.match(root.name):
            raise ReportError(f"{run_dir}: not a folder, nor an lm-eval results_<date>.json file")
        folders, only = [root.parent], root
    else:
        folders, only = _candidate_folders(root), None
    runs: list[Run] = []
    for folder in folders:
        names = [p.name for p in folder.iterdir() if p.is_file()]
        results = sorted(folder / n for n in names if RESULTS_RE.match(n))
        if only is not None:
            results = [only]
        records: dict[str, dict[str, Path]] = {}
        for n in names:
            if m := RECORDS_RE.match(n):
                records.setdefault(m["ts"], {})[m["task"]] = folder / n
        samples: dict[str, dict[str, Path]] = {}
        for n in names:
            if m := SAMPLES_RE.match(n):
                samples.setdefault(m["ts"], {})[m["task"]] = folder / n
        if results:
            runs.extend(_runs_with_results(run_dir, folder, results, records, samples, tokenizers, warn))
        elif records and only is None:
            runs.extend(_runs_from_records(run_dir, folder, records, warn))
    if not runs:
        raise ReportError(
            f"{run_dir}: no lm-eval results file (results_<date>.json) and no lrm-bench records "
            "(lrm_responses_<task>_<date>.jsonl) in it or in its subfolders; pass the folder "
            "given to lm_eval --output_path"
        )
    for run in runs:
        _manifest(run, run.path.parent, root if root.is_dir() else root.parent, warn)
    return runs


def _runs_with_results(
    run_dir: str, folder: Path, results: list[Path], records: dict[str, dict[str, Path]],
    samples: dict[str, dict[str, Path]], tokenizers: Tokenizers, warn: Warn,
) -> list[Run]:
    all_results = sorted(RESULTS_RE.match(p.name)["ts"] for p in folder.iterdir() if RESULTS_RE.match(p.name))
    # Records of a run are stamped when it starts: they belong to the next results file.
    owner: dict[str, str] = {}
    for rts in sorted(records):
        nxt = next((ts for ts in all_results if ts >= rts), None)
        if nxt is None:
            warn(f"{folder}: records dated {rts} have no results file after them (a run that did not finish?); ignored")
        elif nxt in owner:
            warn(f"{folder}: records dated {owner[nxt]} precede another run's records before results {nxt}; ignored")
            owner[nxt] = rts
        else:
            owner[nxt] = rts
    runs = []
    for path in results:
        run, meta = _run_from_results(run_dir, path)
        ts = run.timestamp
        rec_files = records.get(owner.get(ts, ""), {})
        smp_files = samples.get(ts, {})
        for task, info in meta.items():
            run.tasks[task] = _load_task(run, task, info, rec_files.get(task), smp_files.get(task), tokenizers, warn)
        runs.append(run)
    return runs


def _load_task(
    run: Run, task: str, info: dict[str, Any], rec_file: Path | None, smp_file: Path | None,
    tokenizers: Tokenizers, warn: Warn,
) -> TaskRun:
    base = dict(aggregate=info["aggregate"], n_docs=info["n_docs"], repeats=info["repeats"],
                max_gen_toks=info["max_gen_toks"])
    expected = info["n_docs"] * info["repeats"] if info["n_docs"] is not None else None
    if rec_file is not None:
        responses = read_records(rec_file, warn)
        if expected is None or len(responses) >= expected or smp_file is None:
            if expected is not None and len(responses) < expected:
                warn(f"{rec_file}: {len(responses)} records for {expected} expected responses; using what is there")
            return TaskRun(task, RECORDS, responses, file=rec_file, **base)
        warn(f"{rec_file}: {len(responses)} records for {expected} expected responses; using {smp_file.name} instead")
    if smp_file is not None:
        responses = read_samples(smp_file, task, _LazyCounter(tokenizers, run), info["max_gen_toks"], warn)
        if responses is not None and len(responses):
            if any(v is None for v in responses.columns["total_tokens"]) and tokenizers.get(run) is None:
                warn(
                    f"{smp_file}: the run logged no token counts and no tokenizer is known "
                    "(pass --tokenizer, or lm_eval model_args tokenizer=...); lengths are unknown"
                )
            return TaskRun(task, SAMPLES, responses, file=smp_file, **base)
    return TaskRun(task, RESULTS, None, **base)


class _LazyCounter:
    """Loads the run's tokenizer only when a count is actually missing."""

    def __init__(self, tokenizers: Tokenizers, run: Run) -> None:
        self._tokenizers, self._run = tokenizers, run

    @property
    def has_tokenizer(self) -> bool:
        counter = self._tokenizers.get(self._run)
        return counter is not None and counter.has_tokenizer

    def count(self, texts: list[str], **kwargs: Any) -> Any:
        return self._tokenizers.get(self._run).count(texts, **kwargs)


def _runs_from_records(run_dir: str, folder: Path, records: dict[str, dict[str, Path]], warn: Warn) -> list[Run]:
    """A folder of records only (``$LRM_RECORDS_DIR``, ~/.cache/lrm-bench/records/...)."""
    runs = []
    for ts, files in sorted(records.items()):
        tasks: dict[str, TaskRun] = {}
        model = None
        for task, path in sorted(files.items()):
            tasks[task] = TaskRun(task, RECORDS, read_records(path, warn), file=path)
            if model is None:
                for _, rec in _jsonl(path):
                    model = rec.get("model")
                    break
        backend, _, ref = str(model or "").partition(":")
        first = next(iter(sorted(files.values())))
        runs.append(Run(
            run_dir=run_dir, path=first, timestamp=ts, model=backend or None,
            model_args={"pretrained": ref} if ref else {}, seeds={}, tasks=tasks, model_name=ref or None,
        ))
    return runs


def load_runs(
    run_dirs: Sequence[str], *, tokenizer: str | None = None, labels: dict[str, str] | None = None,
    progress: bool = True, warn: Warn | None = None,
) -> list[Run]:
    """Load every run under the given RUN_DIRs; ``labels`` maps a RUN_DIR (as given, or
    its folder name) to a model label."""
    if not run_dirs:
        raise ReportError("no RUN_DIR given")
    notes: Warn = warn or log.warning
    labels = dict(labels or {})
    used: set[str] = set()
    tokenizers = Tokenizers(tokenizer, notes)
    from tqdm.auto import tqdm

    runs: list[Run] = []
    for run_dir in tqdm(list(run_dirs), desc="lrm report: loading runs", unit="run",
                        disable=not progress or len(run_dirs) < 2, leave=False):
        found = load_run_dir(run_dir, tokenizers, notes)
        label_key = next((k for k in _label_keys(run_dir) if k in labels), None)
        if label_key is not None:
            used.add(label_key)
            for run in found:
                run.label = labels[label_key]
        runs.extend(found)
    unused = sorted(set(labels) - used)
    if unused:
        raise ReportError(
            f"--label {unused[0]}=...: {unused[0]!r} is not one of the RUN_DIRs given "
            f"({', '.join(map(str, run_dirs))})"
        )
    return runs


def _label_keys(run_dir: str) -> list[str]:
    p = Path(run_dir).expanduser()
    keys = [run_dir, run_dir.rstrip("/"), p.name]
    try:
        keys.append(str(p.resolve()))
    except OSError:
        pass
    return keys
