"""lrm_tasks: reasoning-aware tasks, scoring and data loading for lrm-bench.

This package is the pure core of lrm-bench: it never imports ``lrm_backends`` or
``compressors``, and its scoring modules need nothing beyond the standard library.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TASK_CONFIG_DIR", "task_config_dir"]


def task_config_dir() -> Path:
    """Return the folder holding lrm-bench's lm-eval task YAMLs.

    An installed wheel carries them as ``lrm_tasks/task_configs``; a source checkout
    (or an editable install) has them at the repository root as ``task_configs/``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "task_configs", here.parent / "task_configs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"lrm-bench task configs not found next to {here}: expected "
        f"{here / 'task_configs'} (installed wheel) or {here.parent / 'task_configs'} "
        "(source checkout). Reinstall lrm-bench with `pip install lrm-bench`."
    )


# Named by the `lm_eval.tasks` entry point (lm-eval's proposed plugin discovery).
TASK_CONFIG_DIR = str(task_config_dir())
