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


class _OurCustomDatasetNotice(logging.Filter):
    """Drops lm-eval's per-task "Custom kwargs can be passed to `--metadata`" warning for
    our tasks: it is printed for every task whose data comes from a function, and ours
    document their metadata (``ids``, ``repeats``...) in the README instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "Custom kwargs can be passed to `--metadata`" not in msg:
            return True
        return not msg.split(":", 1)[0].endswith(("_lrm", "_lrm_paper"))


def quiet_lm_eval_notices() -> None:
    """Install :class:`_OurCustomDatasetNotice` on lm-eval's task logger (once)."""
    task_logger = logging.getLogger("lm_eval.api.task")
    if not any(isinstance(f, _OurCustomDatasetNotice) for f in task_logger.filters):
        task_logger.addFilter(_OurCustomDatasetNotice())


def patch_task_manager(module: ModuleType) -> None:
    """Make every ``TaskManager`` that indexes lm-eval's default tasks also index
    lrm-bench's ``task_configs/`` (``include_defaults=False`` leaves it alone)."""
    quiet_lm_eval_notices()
    cls = module.TaskManager
    if getattr(cls.__init__, _PATCHED_FLAG, False):
        return
    original = cls.__init__
    ours = _our_task_dir()

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        include_defaults = args[2] if len(args) >= 3 else kwargs.get("include_defaults", True)
        if not include_defaults:
            # Our tasks belong with lm-eval's defaults: a user who asked for only their
            # own include_path gets only those (lm-eval's own test suite checks this).
            original(self, *args, **kwargs)
            return
        if len(args) >= 2:  # (verbosity, include_path, ...) given positionally
            args = (args[0], _with_our_path(args[1], ours), *args[2:])
        else:
            kwargs["include_path"] = _with_our_path(kwargs.get("include_path"), ours)
        original(self, *args, **kwargs)

    setattr(__init__, _PATCHED_FLAG, True)
    cls.__init__ = __init__


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
            from lrm_backends.run.settings import safetensors_only

            bound["model_args"] = safetensors_only(bound["model"], bound.get("model_args"))
        current.append({k: bound.get(k) for k in _RUN_ARGS})
        try:
            return simple(*call.args, **call.kwargs)
        except Exception as exc:
            from lrm_backends.run import failures

            # The model could not be built (its engine did not load or start): one line,
            # its full log in a file, no retry (lrm_backends.run.failures).
            if not isinstance(exc, failures.EngineFailure) and failures.raised_in_model_constructor(exc):
                model = bound.get("model")
                name = model if isinstance(model, str) else type(model).__name__
                folder = failures.log_folder_for(bound.get("evaluation_tracker"))
                raise failures.engine_failure(exc, str(name), folder) from exc
            raise
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
    if hasattr(module, "get_git_commit_hash"):
        module.get_git_commit_hash = _quiet_git_hash(module.get_git_commit_hash)
    # lm_eval/__init__.py re-exports these lazily from this module, so it sees ours too.
    module.simple_evaluate, module.evaluate = simple_evaluate, wrapped_evaluate


def _quiet_git_hash(original):
    """lm-eval records ``git describe --always`` of the working directory in its results
    and lets git print "fatal: not a git repository" outside one: the same value, with
    git's complaint kept off the console."""

    @functools.wraps(original)
    def get_git_commit_hash():
        import subprocess

        try:
            done = subprocess.run(["git", "describe", "--always"], capture_output=True, check=False)  # noqa: S607
        except OSError:  # no git on this machine
            done = None
        if done is not None and done.returncode == 0:
            return done.stdout.decode().strip()
        import os

        from lm_eval.loggers import utils

        # lm-eval's own fallback (a checkout's .git files, else None)
        return utils.get_commit_from_path(os.getcwd()) if hasattr(utils, "get_commit_from_path") else None

    return get_git_commit_hash


# sys.argv[0] while ``lrm eval`` runs lm-eval's CLI: it has checked the arguments and
# shows mistakes itself (as ``lrm: error: ...``, with its ``--debug``).
LRM_EVAL_PROG = "lrm eval"
# Plain ``lm_eval`` shows the traceback of a mistake in its arguments when this is set.
DEBUG_ENV = "LRM_DEBUG"


def patch_cli(module: ModuleType) -> None:
    """Make lm-eval's command line (``lm_eval``) check its arguments before anything
    loads (one line and status 2 for a mistake, ``LRM_DEBUG=1`` for the traceback) and
    end with lrm-bench's exit status: one line and status 4 when the engine failed,
    status 3 when some requests failed (``lrm_backends.run.failures``)."""
    original = module.cli_evaluate
    if getattr(original, _PATCHED_FLAG, False):
        return

    @functools.wraps(original)
    def cli_evaluate(*args, **kwargs):
        import os
        import sys

        from lrm_backends.errors import ValidationError
        from lrm_backends.run import failures

        # Plain `lm_eval`: the same checks as `lrm eval` (which runs them itself and prints
        # its own one-line errors), before lm-eval indexes tasks or loads the model, and
        # one line instead of a traceback for a mistake found later.
        plain = not sys.argv[0].endswith(LRM_EVAL_PROG) and not args
        debug = os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        failures.take_outcome()  # only this command's evaluations count
        try:
            if plain:
                from lrm_backends.run.validate import validate_cli_args

                validate_cli_args(sys.argv[1:])
            out = original(*args, **kwargs)
        except ValidationError as exc:
            if not plain or debug:
                raise
            print(f"lm_eval: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except failures.EngineFailure as exc:
            raise SystemExit(failures.engine_exit(exc)) from None
        code = failures.exit_status(failures.take_outcome())
        if code:
            raise SystemExit(code)
        return out

    setattr(cli_evaluate, _PATCHED_FLAG, True)
    module.cli_evaluate = cli_evaluate


def activate() -> None:
    """Apply every seam now (idempotent), whatever lm-eval has imported so far."""
    import lm_eval.__main__ as cli_main
    import lm_eval.evaluator as evaluator
    import lm_eval.models  # noqa: F401  (lm-eval's own models first; see lrm_backends.plugins.register_lm_eval_models)
    import lm_eval.tasks.manager as manager

    patch_task_manager(manager)
    from lrm_backends.plugins import register_lm_eval_models

    register_lm_eval_models()
    patch_evaluator(evaluator)
    patch_cli(cli_main)
