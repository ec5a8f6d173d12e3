"""Check a run before any model loads: every mistake in seconds, in one message.

Called by ``lrm eval`` on its arguments (:func:`validate_cli_args`) and, for plain
``lm_eval`` and Python callers, by the ``simple_evaluate`` wrapper of
:mod:`lrm_backends.run.lmeval_glue` (:func:`validate_simple_evaluate`), which runs before
``simple_evaluate`` builds the model. Each check raises :class:`ValidationError` with a
message that names the bad value, says what was expected and how to fix it:

- ``--model``: an unknown backend, with did-you-mean suggestions;
- ``--model_args`` of lrm-bench's backends: an unknown key, a value of the wrong type,
  ``sparsity`` outside (0, 1), a GGUF file that does not exist. A backend module may
  define ``validate_model_args(model_args: dict) -> None`` (cheap: no model loading, no
  heavy imports) raising ``ValueError`` with such a message; otherwise the backend
  class's ``__init__`` signature and type hints are checked;
- a local checkpoint folder with only pickled weights, for lrm-pruned and (under
  ``lrm eval``'s safetensors-only policy) lm-eval's hf backend;
- ``--tasks``: an unknown task, group or tag, with suggestions;
- ``$LRM_DATA_DIR`` (or ``data_dir`` in ``--metadata``): the files our tasks in the run
  need, missing or lacking fields; an ``ids`` list that does not exist;
- repeats (``--metadata`` / ``$LRM_REPEATS``) that are not a positive integer;
- ``--output_path``, ``$LRM_RECORDS_DIR`` and the cache folder: a place that cannot be
  written.

Nothing here imports torch, transformers or ``datasets``; the check of task names reads
YAML files and, only for a name found nowhere else, lm-eval's full task index (built
once per lm-eval version and kept in ``~/.cache/lrm-bench``).
"""

from __future__ import annotations

import fnmatch
import glob
import importlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from lrm_backends.errors import ValidationError, check_against_signature, check_value, did_you_mean, show_value  # noqa: F401  (public here too)

log = logging.getLogger(__name__)

SPARSITY_KEYS = ("sparsity",)  # model arguments that are a fraction of weights pruned
INDEX_FORMAT = 1
_PATTERN_CHARS = set("*?[")


# ------------------------------------------------------------------------ entry points


def validate_run(
    *,
    model: Any = None,
    model_args: dict[str, Any] | str | None = None,
    tasks: Any = None,
    include_path: Any = None,
    task_manager: Any = None,
    output_path: str | os.PathLike[str] | None = None,
    metadata: dict[str, Any] | None = None,
    limit: Any = None,
    gen_kwargs: Any = None,
) -> None:
    """Run every check; raise :class:`ValidationError` at the first problem."""
    args = _parse_model_args(model_args)
    meta = metadata if isinstance(metadata, dict) else {}
    if isinstance(model, str):
        check_backend(model)
        check_model_args(model, args)
    names = [t for t in _task_list(tasks) if isinstance(t, str)]
    check_tasks(names, include_path=include_path, task_manager=task_manager)
    check_limit(limit)
    check_repeats(meta)
    check_data(names, meta)
    check_outputs(output_path, meta)
    check_reasoning_aware(meta, args, include_path=include_path, task_manager=task_manager)
    if isinstance(model, str):
        check_context_budget(model, args, gen_kwargs, names)


# The context-length argument of each backend that has one, and what happens when a
# prompt plus max_gen_toks does not fit.
_CONTEXT_ARGS = {
    "lrm-vllm": ("max_model_len", "each such request's budget is lowered to fit (recorded; a response "
                 "that reaches it counts as truncated)"),
    "vllm": ("max_model_len", "lm-eval's vllm then cuts the PROMPT from the left (use --model lrm-vllm, "
             "which never cuts a prompt)"),
    "lrm-gguf": ("n_ctx", "each such request's budget is lowered to fit (recorded; a response that "
                 "reaches it counts as truncated)"),
}
TEMPLATE_YAML = "_lrm_template_yaml"  # in task_configs/: our tasks' shared settings
# Prompts are not tokenized before the model loads: a context with less room than this
# beside max_gen_toks is warned about (a chat-templated AIME prompt is ~180 tokens, a
# MuSiQue prompt with its paragraphs ~2,500); the backends say it again per request.
PROMPT_ROOM = 256


def _requested_max_gen_toks(gen_kwargs: Any, names: Sequence[str]) -> int | None:
    """``max_gen_toks`` from ``--gen_kwargs``, else our tasks' default when every task
    named is ours; None when unknown (another task's own default)."""
    if isinstance(gen_kwargs, str) and gen_kwargs.strip():
        from lm_eval.utils import simple_parse_args_string

        try:
            gen_kwargs = simple_parse_args_string(gen_kwargs)
        except Exception:  # noqa: BLE001  (lm-eval reports its own parse errors)
            return None
    if isinstance(gen_kwargs, dict) and gen_kwargs.get("max_gen_toks") is not None:
        try:
            return int(gen_kwargs["max_gen_toks"])
        except (TypeError, ValueError):
            return None
    ours = our_task_index()
    if not names or not all(n in ours for n in names):
        return None
    return our_default_max_gen_toks()


def our_default_max_gen_toks() -> int | None:
    """``max_gen_toks`` of our tasks' shared template (``task_configs/_lrm_template_yaml``)."""
    from lrm_tasks import task_config_dir

    try:
        cfg = yaml.load((Path(task_config_dir()) / TEMPLATE_YAML).read_text(encoding="utf-8"), Loader=_IgnoreTags)
        return int(cfg["generation_kwargs"]["max_gen_toks"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None


def check_context_budget(model: str, model_args: dict[str, Any], gen_kwargs: Any, names: Sequence[str]) -> None:
    """Warn before anything loads when the context (``max_model_len`` / ``n_ctx``) cannot
    hold ``max_gen_toks`` plus a prompt: requests would get a smaller budget than asked
    (or, with lm-eval's vllm, a cut prompt). Prompts are not tokenized yet, so this warns
    when fewer than :data:`PROMPT_ROOM` tokens are left beside the budget."""
    arg_and_effect = _CONTEXT_ARGS.get(model)
    if arg_and_effect is None:
        return
    arg, effect = arg_and_effect
    try:
        context = int(model_args[arg]) if model_args.get(arg) is not None else None
    except (TypeError, ValueError):
        return
    budget = _requested_max_gen_toks(gen_kwargs, names)
    if context is None or budget is None or context - budget >= PROMPT_ROOM:
        return
    log.warning(
        "lrm-bench: %s=%d leaves %s for the prompt beside max_gen_toks=%d: when a prompt does not fit, %s. "
        "Pass %s=%d (max_gen_toks plus room for the longest prompt) or a smaller --gen_kwargs max_gen_toks.",
        arg, context, f"{context - budget} tokens" if context > budget else "no room", budget, effect,
        arg, budget + 8192,
    )


def check_reasoning_aware(
    metadata: dict[str, Any], model_args: dict[str, Any], *, include_path: Any = None, task_manager: Any = None
) -> None:
    """``lrm_reasoning_aware`` names generate_until tasks (or groups) lm-eval knows, and
    the backend keeps the reasoning (``lrm_backends.run.reasoning_aware``)."""
    from lrm_backends.run import reasoning_aware

    names = reasoning_aware.requested(metadata)
    if not names:
        return
    reasoning_aware.check_model_args(names, model_args)
    if task_manager is None or not hasattr(task_manager, "task_index"):
        from lm_eval.tasks import TaskManager

        task_manager = TaskManager(include_path=include_path)
    reasoning_aware.check_names(names, task_manager)


def validate_simple_evaluate(bound: dict[str, Any]) -> None:
    """:func:`validate_run` on ``simple_evaluate``'s bound arguments."""
    tracker = bound.get("evaluation_tracker")
    _guarded(
        model=bound.get("model"),
        model_args=bound.get("model_args"),
        tasks=bound.get("tasks"),
        task_manager=bound.get("task_manager"),
        output_path=getattr(tracker, "output_path", None),
        metadata=bound.get("metadata"),
        limit=bound.get("limit"),
        gen_kwargs=bound.get("gen_kwargs"),
    )


def _guarded(**kwargs: Any) -> None:
    """:func:`validate_run`; a failure of the checks themselves never stops a run."""
    try:
        validate_run(**kwargs)
    except ValidationError:
        raise
    except Exception as exc:  # a bug here must not cost anyone their evaluation
        log.warning("lrm-bench: pre-load checks skipped after an internal error (%s: %s)", type(exc).__name__, exc)


def validate_cli_args(argv: Sequence[str]) -> None:
    """:func:`validate_run` on ``lm_eval run`` arguments, parsed by lm-eval's own parser.

    Arguments lm-eval itself rejects are left to it (it reports them next).
    """
    import contextlib
    import io

    try:
        from lm_eval._cli import HarnessCLI
        from lm_eval.config.evaluate_config import EvaluatorConfig

        cli = HarnessCLI()
        argv = list(argv)
        if argv and argv[0] == "run":
            argv = argv[1:]
        if any(a in ("-h", "--help") for a in argv):
            return
        # Quietly: lm-eval prints a --config file's settings, and argparse its errors,
        # both of which lm-eval's own run does next.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ns = cli._parser.parse_args(["run", *argv])
            cfg = EvaluatorConfig.from_cli(ns)
    except (SystemExit, Exception) as exc:  # lm-eval's own errors are its to report
        log.debug("lrm-bench: pre-validation skipped (%s)", exc)
        return
    _guarded(
        model=cfg.model,
        model_args=cfg.model_args,
        tasks=cfg.tasks,
        include_path=cfg.include_path,
        output_path=cfg.output_path,
        metadata=cfg.metadata,
        limit=cfg.limit,
        gen_kwargs=getattr(cfg, "gen_kwargs", None),
    )


# ---------------------------------------------------------------------------- backend


def _parse_model_args(model_args: Any) -> dict[str, Any]:
    if isinstance(model_args, dict):
        return dict(model_args)
    if isinstance(model_args, str):
        from lm_eval.utils import simple_parse_args_string

        return simple_parse_args_string(model_args)
    return {}


def _available_backends() -> list[str]:
    import lm_eval.models  # noqa: F401  (lm-eval's own lazy registrations)
    from lm_eval.api.registry import model_registry

    from lrm_backends.plugins import register_lm_eval_models

    register_lm_eval_models()
    return sorted(model_registry.keys())


def check_backend(model: str) -> None:
    """``--model``: a name lm-eval's registry (with our backends) knows."""
    available = _available_backends()
    if model not in available:
        from lrm_backends.plugins import unknown_backend_message

        raise ValidationError(unknown_backend_message(model, available))


def _our_backend_target(model: str) -> str | None:
    from lrm_backends.plugins import backend_targets

    return backend_targets().get(model)


def check_model_args(model: str, model_args: dict[str, Any]) -> None:
    """Keys, types and values of ``--model_args`` for one of lrm-bench's backends."""
    target = _our_backend_target(model)
    if target is None:
        _check_hf_safetensors(model, model_args)
        return  # lm-eval's own backends check their arguments themselves
    for key in SPARSITY_KEYS:  # before importing the backend: some import torch
        if key in model_args:
            _check_fraction(key, model_args[key])
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValidationError(
            f"--model {model}: its module {module_name} cannot be imported ({exc}). Install "
            "the package it names, then run again."
        ) from None
    hook = getattr(module, "validate_model_args", None)
    if callable(hook):
        try:
            hook(dict(model_args))
        except ValidationError:
            raise
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    else:
        cls = getattr(module, class_name, None)
        if cls is not None:
            check_against_signature(model, cls, model_args)


def _check_hf_safetensors(model: str, model_args: dict[str, Any]) -> None:
    """lm-eval's hf backend under the safetensors-only policy (``lrm eval``): a local
    folder with only pickled weights fails now, not after lm-eval has set up."""
    from lrm_backends.run.settings import safetensors_only

    if safetensors_only(model, dict(model_args)).get("use_safetensors") is not True:
        return  # not the hf backend, the policy is off, or use_safetensors=False was passed
    from compressors.checkpoints import pickled_only_message, pickled_weights_only

    pretrained = model_args.get("pretrained")
    if isinstance(pretrained, str) and (pickled := pickled_weights_only(pretrained)):
        raise ValidationError(
            f"--model_args pretrained={pretrained}: {pickled_only_message(pretrained, pickled)}; or pass "
            "use_safetensors=False to load it anyway."
        )


def _check_fraction(key: str, value: Any) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < float(value) < 1.0
    if not ok:
        raise ValidationError(
            f"--model_args {key}={show_value(value)}: expected the fraction of weights pruned, a number "
            f"strictly between 0 and 1. Pass e.g. {key}=0.5 for 50%."
        )


# ------------------------------------------------------------------------------ tasks


def _task_list(tasks: Any) -> list[Any]:
    if tasks is None:
        return []
    if isinstance(tasks, str):
        return [t.strip() for t in tasks.split(",") if t.strip()]
    out: list[Any] = []
    for t in tasks:
        out.extend(_task_list(t) if isinstance(t, str) else [t])
    return out


class _IgnoreTags(yaml.SafeLoader):
    """YAML loader that reads ``!function x.y`` as the string ``x.y``."""


def _tag_as_text(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_IgnoreTags.add_multi_constructor("!", _tag_as_text)


def our_task_index() -> dict[str, set[str]]:
    """Our task, group and tag names -> the benchmarks they evaluate (each task's folder
    in ``task_configs/`` is its benchmark)."""
    from lrm_tasks import task_config_dir

    root = Path(task_config_dir())
    index: dict[str, set[str]] = {}
    groups: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        try:
            cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_IgnoreTags) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(cfg, dict):
            continue
        if "group" in cfg:
            members = cfg.get("task") or []
            groups[str(cfg["group"])] = [str(m) for m in (members if isinstance(members, list) else [members])]
            continue
        name = cfg.get("task")
        if not isinstance(name, str):
            continue
        bench = path.parent.name if path.parent != root else name
        index.setdefault(name, set()).add(bench)
        tags = cfg.get("tag") or []
        for tag in tags if isinstance(tags, list) else [tags]:
            index.setdefault(str(tag), set()).add(bench)
    for group, members in groups.items():
        index[group] = set().union(*(index.get(m, set()) for m in members)) if members else set()
    return index


def _lm_eval_tasks_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    return Path(spec.origin).parent / "tasks" if spec and spec.origin else Path()


_SCAN_RE = re.compile(r"^(?:task|group|tag):[ \t]*(.*)$")


def scanned_lm_eval_names() -> set[str]:
    """Names in lm-eval's task YAMLs, read as text (a fast subset of its index: enough
    to accept a name, never to reject one)."""
    names: set[str] = set()
    for dirpath, _, files in os.walk(_lm_eval_tasks_dir()):
        for f in files:
            if not f.endswith(".yaml"):
                continue
            try:
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    lines = fh.read().split("\n")
            except (OSError, UnicodeDecodeError):
                continue
            for i, line in enumerate(lines):
                m = _SCAN_RE.match(line)
                if not m:
                    continue
                value = m.group(1).split(" #", 1)[0].strip()
                if value.startswith("["):
                    names.update(v.strip().strip("'\"") for v in value.strip("[]").split(","))
                elif value:
                    names.add(value.strip("'\""))
                else:
                    for nxt in lines[i + 1:]:
                        item = nxt.strip()
                        if not item.startswith("- "):
                            break
                        names.add(item[2:].split(" #", 1)[0].strip().strip("'\""))
    names.discard("")
    return names


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "lrm-bench"


def _index_key() -> str:
    import importlib.metadata

    try:
        version = importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    tasks_dir = _lm_eval_tasks_dir()
    try:
        stamp = tasks_dir.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return f"{version}-{stamp}"


def index_path() -> Path:
    return cache_home() / "lm_eval_task_index.json"


def kept_lm_eval_task_names() -> set[str] | None:
    """lm-eval's task index as kept by :func:`lm_eval_task_names`, if still current."""
    try:
        data = json.loads(index_path().read_text(encoding="utf-8"))
        if data.get("format") == INDEX_FORMAT and data.get("key") == _index_key():
            return set(data["names"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def lm_eval_task_names() -> set[str]:
    """Every name lm-eval's own ``TaskManager`` knows, kept per lm-eval version.

    Building it takes lm-eval several seconds (it reads every task YAML); only a name
    found nowhere else needs it.
    """
    kept = kept_lm_eval_task_names()
    if kept is not None:
        return kept
    path, key = index_path(), _index_key()
    from lm_eval.tasks import TaskManager

    names = set(TaskManager().all_tasks)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": INDEX_FORMAT, "key": key, "names": sorted(names)}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("lrm-bench: could not keep lm-eval's task index in %s (%s)", path, exc)
    return names


def _include_names(include_path: Any) -> set[str]:
    if not include_path:
        return set()
    from lm_eval.tasks import TaskManager

    return set(TaskManager(include_defaults=False, include_path=include_path).all_tasks)


def _matches(name: str, names: Iterable[str]) -> bool:
    if _PATTERN_CHARS & set(name):
        return any(fnmatch.fnmatchcase(n, name) for n in names)
    return name in names if isinstance(names, (set, frozenset, dict)) else name in set(names)


def check_tasks(names: Sequence[str], *, include_path: Any = None, task_manager: Any = None) -> None:
    """Every name is a task, group or tag (or a task YAML / folder that exists)."""
    ours = our_task_index()
    pending = []
    for name in names:
        if name.endswith(".yaml"):
            if not glob.glob(name):
                raise ValidationError(
                    f"--tasks {name}: no such task YAML file. Pass an existing .yaml path, or a task name."
                )
        elif not _matches(name, ours) and not Path(name).is_dir():
            pending.append(name)
    if not pending:
        return
    if task_manager is not None and hasattr(task_manager, "all_tasks"):
        sources: list[set[str]] = [set(task_manager.all_tasks)]
        lazily: list[Any] = []
    else:
        sources = [_include_names(include_path)]
        kept = kept_lm_eval_task_names()
        lazily = [lambda: kept] if kept is not None else [scanned_lm_eval_names, lm_eval_task_names]
    for name in pending:
        known = any(_matches(name, s) for s in sources)
        for more in list(lazily):
            if known:
                break
            sources.append(more())
            lazily.remove(more)
            known = _matches(name, sources[-1])
        if not known:
            raise ValidationError(_unknown_task_message(name, set(ours).union(*sources)))


def _unknown_task_message(name: str, names: set[str]) -> str:
    hint = did_you_mean(name, names, n=3, cutoff=0.75, ignore_case=True)
    return (
        f"--tasks {name}: no such task, group or tag.{hint} `lm_eval ls tasks` lists them all; "
        "your own task YAMLs need --include_path DIR."
    )


# ------------------------------------------------------------------------------- data


def check_limit(limit: Any) -> None:
    """``--limit``: documents per task (a count, or a fraction in (0, 1)); 0 or less would
    end in lm-eval's "did not find any docs" after everything loaded."""
    if limit is None:
        return
    try:
        value = float(limit)
    except (TypeError, ValueError):
        return  # lm-eval's own parser reports it
    if value <= 0:
        raise ValidationError(
            f"--limit {show_value(limit)}: no document would be evaluated. Pass a number of "
            "documents per task (e.g. --limit 8) or a fraction in (0, 1) (e.g. --limit 0.1), "
            "or leave --limit out to evaluate every document."
        )


def check_repeats(metadata: dict[str, Any]) -> None:
    from lrm_backends.run.settings import repeats

    repeats(metadata)


def check_data(names: Sequence[str], metadata: dict[str, Any]) -> None:
    """The local files our tasks in the run read, when ``$LRM_DATA_DIR`` is set."""
    from lrm_tasks import data, harness

    ours = our_task_index()
    benchmarks = sorted(set().union(*(ours.get(n, set()) for n in names))) if names else []
    if not benchmarks:
        return
    data_dir = metadata.get("data_dir") or os.environ.get(data.DATA_DIR_ENV) or None
    if data_dir:
        folder = Path(str(data_dir)).expanduser()
        source = "data_dir" if metadata.get("data_dir") else data.DATA_DIR_ENV
        if not folder.is_dir():
            raise ValidationError(
                f"{source}={folder}: no such folder. Point it at the folder holding the benchmark "
                f"files ({', '.join(data.BENCHMARKS[b].local_files[0] for b in benchmarks)}; see the "
                f"README, 'Offline data'), or unset it to load from the Hugging Face Hub."
            )
        for bench in benchmarks:
            try:
                data.load_docs(bench, data_dir=folder)
            except data.DataError as exc:
                raise ValidationError(str(exc)) from None
    ids = metadata.get("ids")
    if isinstance(ids, str) and ids not in harness.ID_LISTS:
        try:
            listed = data.read_id_list(ids)
        except data.DataError as exc:
            raise ValidationError(
                f"--metadata ids={ids}: {exc} Or name a shipped list: {', '.join(harness.ID_LISTS)}."
            ) from None
        if not listed:
            raise ValidationError(
                f"--metadata ids={ids}: the file lists no ids. Put one id per line (or a JSON "
                f"array), or name a shipped list: {', '.join(harness.ID_LISTS)}."
            )


# ---------------------------------------------------------------------------- outputs


def _unwritable(path: Path) -> str | None:
    """Why ``path`` (a folder to create or use) cannot be written, or None."""
    p = path.expanduser()
    if p.suffix == ".json" and not p.is_dir():  # lm-eval accepts a results file name
        p = p.parent
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            return f"{probe} does not exist"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user" if probe == p else f"{probe} is not writable by this user, so {p} cannot be created"
    return None


def check_outputs(output_path: Any, metadata: dict[str, Any]) -> None:
    from lrm_backends.run.cache import CACHE_ENV, CACHE_METADATA_KEY
    from lrm_backends.run.recording import RECORDS_DIR_ENV

    places = []
    if output_path:
        places.append(("--output_path", output_path))
    if os.environ.get(RECORDS_DIR_ENV):
        places.append((RECORDS_DIR_ENV, os.environ[RECORDS_DIR_ENV]))
    if metadata.get(CACHE_METADATA_KEY):
        places.append(("--cache", metadata[CACHE_METADATA_KEY]))
    elif os.environ.get(CACHE_ENV):
        places.append((CACHE_ENV, os.environ[CACHE_ENV]))
    for label, place in places:
        why = _unwritable(Path(str(place)))
        if why:
            sep = " " if label.startswith("--") else "="
            raise ValidationError(
                f"{label}{sep}{place}: cannot write there ({why}). Pass a folder you can write to."
            )
