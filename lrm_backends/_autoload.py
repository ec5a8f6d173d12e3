"""Make the plain ``lm_eval`` command see lrm-bench's tasks and backends.

lm-eval 0.4.13 has no plugin discovery (upstream PRs #4013/#4015 add ``lm_eval.tasks``
and ``lm_eval.models`` entry points, which ``pyproject.toml`` already declares). Until
a release reads them, ``lrm_bench_autoload.pth`` imports this module at interpreter
start. It only appends a small import hook to ``sys.meta_path``; nothing else runs and
nothing is imported until lm_eval itself imports one of the two modules below:

- ``lm_eval.tasks.manager`` -> our ``task_configs/`` folder joins every ``TaskManager``'s
  include path (``lrm_backends.run.lmeval_glue.patch_task_manager``);
- ``lm_eval.models`` -> our backends join lm-eval's model registry as lazy
  ``"module:Class"`` targets, *after* lm-eval has registered its own, so its lazy
  loading of ``vllm``/``hf`` is untouched (``lrm_backends.plugins.register_lm_eval_models``);
- ``lm_eval.evaluator`` -> evaluations of our tasks count tokens with the model's
  tokenizer and hand per-response records to the registry's recorders
  (``lrm_backends.run.lmeval_glue.patch_evaluator``);
- ``lm_eval.__main__`` -> the ``lm_eval`` command exits non-zero when the engine failed
  or requests failed (``lrm_backends.run.lmeval_glue.patch_cli``).

Set ``LRM_BENCH_AUTOLOAD=0`` to switch it off; ``lrm eval`` works either way.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import Loader, MetaPathFinder

DISABLE_ENV = "LRM_BENCH_AUTOLOAD"
_OFF_VALUES = {"0", "false", "no", "off"}

# module lm_eval imports -> "module:function" run right after that module has loaded.
POST_IMPORT_HOOKS: dict[str, str] = {
    "lm_eval.tasks.manager": "lrm_backends.run.lmeval_glue:patch_task_manager",
    "lm_eval.models": "lrm_backends.plugins:register_lm_eval_models",
    "lm_eval.evaluator": "lrm_backends.run.lmeval_glue:patch_evaluator",
    "lm_eval.__main__": "lrm_backends.run.lmeval_glue:patch_cli",
}


def _run_hook(fullname: str, module: object) -> None:
    target = POST_IMPORT_HOOKS[fullname]
    try:
        import importlib

        mod_name, _, func = target.partition(":")
        getattr(importlib.import_module(mod_name), func)(module)
    except Exception as exc:  # never break lm_eval because of us
        import warnings

        warnings.warn(
            f"lrm-bench could not hook into {fullname} ({type(exc).__name__}: {exc}); "
            f"its tasks/backends may be missing from plain lm_eval. "
            f"Use `lrm eval` instead, or set {DISABLE_ENV}=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )


class _HookedLoader(Loader):
    """Delegates to the real loader, then runs our hook on the fresh module."""

    def __init__(self, loader: Loader, fullname: str) -> None:
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _run_hook(self._fullname, module)

    def __getattr__(self, name: str):  # get_source, get_resource_reader, ...
        return getattr(self._loader, name)


class PostImportFinder(MetaPathFinder):
    """Finds nothing itself; wraps the real loader of the few modules we hook."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in POST_IMPORT_HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader, fullname)
        return spec


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1").strip().lower() not in _OFF_VALUES


def install() -> None:
    """Add the import hook once (idempotent). Called by the ``.pth`` file."""
    if not enabled() or any(isinstance(f, PostImportFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, PostImportFinder())
