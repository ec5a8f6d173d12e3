"""``lrm eval``: lm-eval's own command line with lrm-bench's tasks and backends
registered, plus lrm-bench's options (``--repeats``, ``--cache``, ``--strict``,
``--max-retries``, ``--allow-failures``, ``--reasoning-aware``), which become
``--metadata`` keys that plain ``lm_eval`` users can pass themselves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from lrm_backends.errors import UserError


def _pop_option(argv: list[str], name: str) -> str | None:
    """Remove ``name VALUE`` / ``name=VALUE`` from ``argv``; return VALUE (last wins)."""
    value = None
    i = 0
    while i < len(argv):
        if argv[i] == name:
            if i + 1 >= len(argv):
                raise UserError(f"{name} needs a value")
            value = argv[i + 1]
            del argv[i : i + 2]
        elif argv[i].startswith(name + "="):
            value = argv[i].split("=", 1)[1]
            del argv[i]
        else:
            i += 1
    return value


def translate_lrm_options(argv: Sequence[str]) -> list[str]:
    """Turn ``lrm eval``'s own options into plain lm_eval arguments.

    ``--repeats K`` becomes ``"repeats": K`` in ``--metadata`` (merged with any JSON the
    user passed), which our tasks read; ``--cache DIR`` becomes ``"lrm_cache": DIR`` and
    ``--strict`` ``"lrm_strict": true`` (see ``lrm_backends.run.cache``); ``--max-retries N``
    ``"lrm_max_retries": N`` and ``--allow-failures`` ``"lrm_allow_failures": true`` (see
    ``lrm_backends.run.failures``); ``--reasoning-aware TASKS`` ``"lrm_reasoning_aware":
    TASKS`` (``lrm_backends.run.reasoning_aware``). Plain lm_eval users pass that metadata
    directly.

    >>> translate_lrm_options(["--tasks", "aime24_lrm", "--repeats", "4"])
    ['--tasks', 'aime24_lrm', '--metadata', '{"repeats": 4}']
    >>> translate_lrm_options(["--cache", "runs/cache", "--strict"])
    ['--metadata', '{"lrm_cache": "runs/cache", "lrm_strict": true}']
    """
    import json

    argv = list(argv)
    repeats = _pop_option(argv, "--repeats")
    cache = _pop_option(argv, "--cache")
    retries = _pop_option(argv, "--max-retries")
    aware = _pop_option(argv, "--reasoning-aware")
    strict = "--strict" in argv
    allow = "--allow-failures" in argv
    argv = [a for a in argv if a not in ("--strict", "--allow-failures")]
    if repeats is None and cache is None and not strict and retries is None and not allow and aware is None:
        return argv
    if retries is not None and not retries.isdigit():
        raise UserError(f"--max-retries {retries!r}: expected a non-negative integer (retries per failed request), e.g. --max-retries 2")
    if repeats is not None:
        from lrm_backends.errors import ValidationError
        from lrm_backends.run.settings import repeats as parse_repeats

        try:
            parse_repeats({"repeats": repeats})
        except ValidationError:
            raise UserError(
                f"--repeats {repeats!r}: expected a positive integer (samples per question), e.g. --repeats 8"
            ) from None
    if cache is not None and not cache.strip():
        raise UserError("--cache '': expected a folder for the response cache, e.g. --cache runs/cache")
    raw = _pop_option(argv, "--metadata")
    try:
        meta = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise UserError(f"--metadata {raw!r} is not valid JSON ({exc.msg}); expected e.g. '{{\"key\": 1}}'") from exc
    if not isinstance(meta, dict):
        raise UserError(f"--metadata {raw!r} must be a JSON object")
    if repeats is not None:
        meta["repeats"] = int(repeats)
    if cache is not None:
        meta["lrm_cache"] = cache
    if strict:
        meta["lrm_strict"] = True
    if retries is not None:
        meta["lrm_max_retries"] = int(retries)
    if allow:
        meta["lrm_allow_failures"] = True
    if aware is not None:
        if not aware.strip():
            raise UserError("--reasoning-aware '': expected task names, e.g. --reasoning-aware gsm8k,minerva_math")
        meta["lrm_reasoning_aware"] = aware
    return [*argv, "--metadata", json.dumps(meta)]


EVAL_HELP = """\
usage: lrm eval [lrm-bench options] [lm_eval run options]

lm_eval with lrm-bench's tasks and backends registered. lrm-bench's own options:
  --repeats K          sample K responses per question (avg@K, pass@k, maj@k)
  --cache DIR          keep every response in DIR as it arrives; the same command
                       again generates only what is missing (not lm-eval's
                       --use_cache, which keys on the request text and keeps no
                       sampled repeats apart)
  --strict             stop at the first failed request instead of recording it
  --max-retries N      retries of a failed request (default 2), never a reload
  --allow-failures     exit 0 even when some requests failed (default: exit 3)
  --reasoning-aware TASKS
                       make lm-eval's own generate_until TASKS (e.g. gsm8k) score
                       the answer after </think> (strict) and the whole text
                       (flexible), with reasoning/total token counts
Plain lm_eval takes the same settings as --metadata '{"repeats": K, "lrm_cache": DIR,
"lrm_strict": true, "lrm_max_retries": N, "lrm_allow_failures": true,
"lrm_reasoning_aware": "TASKS"}'.

lm_eval's own options follow.
"""


def run_lm_eval(argv: Sequence[str]) -> int:
    """Run lm-eval's CLI on ``argv`` with our tasks and backends registered."""
    from lrm_backends.run.lmeval_glue import LRM_EVAL_PROG, activate
    from lrm_backends.run.settings import SAFETENSORS_ONLY_ENV

    if any(a in ("-h", "--help") for a in argv):
        print(EVAL_HELP)
        if argv[:1] != ["run"]:
            argv = ["run", *argv]  # lm_eval's `run` options, not its list of commands
    argv = translate_lrm_options(argv)
    # Checkpoints of lm-eval's hf backend load from safetensors only (lmeval_glue), unless
    # the user set LRM_SAFETENSORS_ONLY=0 or passes use_safetensors=False.
    saved_policy = os.environ.get(SAFETENSORS_ONLY_ENV)
    os.environ.setdefault(SAFETENSORS_ONLY_ENV, "1")
    saved = sys.argv
    try:
        activate()
        from lrm_backends.run.validate import validate_cli_args

        validate_cli_args(argv)  # before lm-eval indexes its tasks and loads the model
        from lm_eval.__main__ import cli_evaluate

        sys.argv = [LRM_EVAL_PROG, *argv]  # lmeval_glue.patch_cli: checked above already
        cli_evaluate()
    except SystemExit as exc:  # argparse --help / errors; failed requests or engine (lmeval_glue.patch_cli)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        sys.argv = saved
        if saved_policy is None:
            os.environ.pop(SAFETENSORS_ONLY_ENV, None)
    return 0
