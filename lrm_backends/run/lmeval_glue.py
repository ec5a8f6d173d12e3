"""The seams where lrm-bench joins lm-eval: task include path and model registry.

Used two ways: by the import hook of ``lrm_backends._autoload`` (plain ``lm_eval``), and
explicitly by :func:`activate` (``lrm eval`` and Python callers), so that lrm-bench
works even where the ``.pth`` hook is switched off.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType

from lrm_backends.run.settings import HF_BACKENDS, SAFETENSORS_ONLY_ENV, safetensors_only  # noqa: F401  (public here too)

log = logging.getLogger(__name__)

_PATCHED_FLAG = "_lrm_bench_include_path"


def _our_task_dir() -> Path:
    from lrm_tasks import task_config_dir

    return task_config_dir()


def _with_our_path(include_path, ours: Path) -> list:
    if include_path is None:
        paths = []
    elif isinstance(include_path, (list, tuple)):
        paths = list(include_path)
    else:
        paths = [include_path]
    if any(Path(p).resolve() == ours for p in paths):
        return paths
    # Ours first, so a user's --include_path can still override one of our tasks.
    return [ours, *paths]


def patch_task_manager(module: ModuleType) -> None:
    """Make every ``TaskManager`` also index lrm-bench's ``task_configs/``."""
    cls = module.TaskManager
    if getattr(cls.__init__, _PATCHED_FLAG, False):
        return
    original = cls.__init__
    ours = _our_task_dir()

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        if len(args) >= 2:  # (verbosity, include_path, ...) given positionally
            args = (args[0], _with_our_path(args[1], ours), *args[2:])
        else:
            kwargs["include_path"] = _with_our_path(kwargs.get("include_path"), ours)
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED_FLAG, True)
    cls.__init__ = __init__


def register_models(module: ModuleType | None = None) -> None:
    """Add every backend of our plugin registry to lm-eval's model registry.

    Runs after ``lm_eval.models`` has registered lm-eval's own lazy models: registering
    into an empty registry would stop ``get_model`` from ever importing
    ``lm_eval.models``, and ``--model vllm`` would then fail.
    """
    from lm_eval.api.registry import model_registry

    from lrm_backends.plugins import backend_targets

    for name, target in backend_targets().items():
        if name in model_registry:
            continue
        model_registry.register(name, target=target)


_RUN_ARGS = ("model", "model_args", "evaluation_tracker", "metadata")


def patch_evaluator(module: ModuleType) -> None:
    """Wrap ``simple_evaluate`` (to validate the run before the model is built, and to
    learn the model, output path and metadata) and ``evaluate`` (to run inside an
    :class:`lrm_backends.run.evaluation.Session`)."""
    if getattr(module.evaluate, _PATCHED_FLAG, False):
        return
    import inspect

    simple, evaluate = module.simple_evaluate, module.evaluate
    simple_sig = inspect.signature(simple)
    current: list[dict] = []

    @functools.wraps(simple)
    def simple_evaluate(*args, **kwargs):
        call = simple_sig.bind_partial(*args, **kwargs)
        bound = call.arguments
        from lrm_backends.run.validate import validate_simple_evaluate

        validate_simple_evaluate(bound)  # simple_evaluate builds the model before evaluate()
        if "model" in bound:
            bound["model_args"] = safetensors_only(bound["model"], bound.get("model_args"))
        current.append({k: bound.get(k) for k in _RUN_ARGS})
        try:
            return simple(*call.args, **call.kwargs)
        finally:
            current.pop()

    @functools.wraps(evaluate)
    def wrapped_evaluate(lm, task_dict, *args, **kwargs):
        from lrm_backends.run.evaluation import Session

        session = Session(current[-1] if current else {})
        if not session.prepare(lm, task_dict):
            return evaluate(lm, task_dict, *args, **kwargs)
        try:
            results = evaluate(session.lm, task_dict, *args, **kwargs)
        finally:
            session.finish()
        return session.annotate(results)

    for fn in (simple_evaluate, wrapped_evaluate):
        setattr(fn, _PATCHED_FLAG, True)
    # lm_eval/__init__.py re-exports these lazily from this module, so it sees ours too.
    module.simple_evaluate, module.evaluate = simple_evaluate, wrapped_evaluate


def activate() -> None:
    """Apply every seam now (idempotent), whatever lm-eval has imported so far."""
    import lm_eval.evaluator as evaluator
    import lm_eval.models  # noqa: F401  (lm-eval's own models first; see register_models)
    import lm_eval.tasks.manager as manager

    patch_task_manager(manager)
    register_models()
    patch_evaluator(evaluator)
