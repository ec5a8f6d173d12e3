"""``lrm budget RUN_DIR... --model M --model_args ... --budgets 1024,2048,4096 --out OUT``.

Thinking-budget curves from saved responses by budget forcing; see
:mod:`lrm_backends.run.budget`. ``lrm report OUT`` draws the curves.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _with_prefix_caching(model: str, model_args: str) -> str:
    """vllm backends get ``enable_prefix_caching=True`` unless the user set it.

    >>> _with_prefix_caching("vllm", "pretrained=m")
    'pretrained=m,enable_prefix_caching=True'
    >>> _with_prefix_caching("hf", "pretrained=m")
    'pretrained=m'
    """
    from lrm_backends.run.budget import VLLM_BACKENDS

    if model not in VLLM_BACKENDS or "enable_prefix_caching" in model_args:
        return model_args
    return f"{model_args},enable_prefix_caching=True" if model_args else "enable_prefix_caching=True"


def _default_device() -> str:
    """cuda when torch sees a GPU, else cpu (lm-eval's hf backend assumes cuda)."""
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # a backend without torch (lrm-gguf) ignores the device
        return "cpu"


def _build_lm(args: argparse.Namespace) -> Any:
    import lm_eval.api.registry as registry

    from lrm_backends.cli import UserError
    from lrm_backends.run.lmeval_glue import activate

    activate()
    try:
        cls = registry.get_model(args.model)
    except ValueError as exc:
        raise UserError(f"--model {args.model!r}: {exc}") from None
    extra = {"batch_size": args.batch_size, "device": args.device or _default_device()}
    return cls.create_from_arg_string(args.model_args, extra)


def run(args: argparse.Namespace) -> int:
    """Run the budget pass (the ``lrm budget`` subcommand)."""
    from lrm_backends.cli import UserError
    from lrm_backends.run import budget as bp
    from lrm_backends.run.cache import ResilientLM, Settings, open_cache
    from lrm_backends.hookspecs import default_timestamp

    def say(msg: str) -> None:
        print(f"lrm budget: {msg}", file=sys.stderr, flush=True)

    try:
        budgets = bp.parse_budgets(args.budgets)
    except bp.BudgetError as exc:
        raise UserError(str(exc)) from None
    if args.answer_tokens < 1:
        raise UserError(f"--answer-tokens {args.answer_tokens}: needs at least 1 (tokens the model may write after the cue)")
    out = Path(args.out).expanduser()
    for d in args.run_dirs:
        p = Path(d).expanduser().resolve()
        if p.is_dir() and (out.resolve() == p or p in out.resolve().parents):
            raise UserError(f"--out {args.out}: inside RUN_DIR {d}, whose .jsonl files are read as saved responses; "
                            "pass a folder outside it")
    cue = bp.resolve_cue(args.cue)
    close = "\n" + args.think_end + cue
    model_args = _with_prefix_caching(args.model, args.model_args or "")
    args.model_args = model_args
    lm = _build_lm(args)
    if args.tokenizer:
        from lrm_backends.models.replay import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    else:
        tokenizer = getattr(getattr(lm, "lm", lm), "tokenizer", None)
    try:
        cutter = bp.TokenCutter(tokenizer)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
        items = bp.load_items(
            args.run_dirs, lm, cutter, tasks=tasks, think_end=args.think_end,
            apply_chat_template=args.apply_chat_template, system_instruction=args.system_instruction,
            limit=args.limit, warn=say,
        )
    except bp.BudgetError as exc:
        raise UserError(str(exc)) from None
    plan = bp.plan_budgets(items, budgets, cutter, close)
    kept = sum(not c.forced for c in plan.cells)
    say(f"{len(items)} responses x {len(budgets)} budgets: {kept} keep their own answer, "
        f"{len(plan.cells) - kept} forced through {len(plan.contexts)} distinct prompts "
        f"(<= {args.answer_tokens} answer tokens each)")
    cache_dir = None if args.no_cache else Path(args.cache).expanduser() if args.cache else out / "cache"
    settings = Settings(cache_dir=cache_dir)
    resilient = ResilientLM(lm, cache=open_cache(settings, args.model, model_args, lm))
    try:
        requests = bp.answer_requests(plan, args.answer_tokens)
        answers = resilient.generate_until(requests) if requests else []
        summary = resilient.summary()
    finally:
        resilient.close()
    model_ref = model_args.split("pretrained=", 1)[1].split(",", 1)[0] if "pretrained=" in model_args else args.model
    label = args.label or Path(model_ref).name or args.model
    by_task, originals = bp.score_cells(plan, answers, cue=cue, close=close, think_end=args.think_end,
                                        cutter=cutter, model=f"{args.model}:{model_ref}")
    config = {
        "model": args.model, "model_args": model_args, "label": label, "budgets": budgets,
        "answer_tokens": args.answer_tokens, "cue": cue, "think_end": args.think_end,
        "apply_chat_template": args.apply_chat_template, "sources": [str(d) for d in args.run_dirs],
        "responses": len(items), "forced_prompts": len(plan.contexts),
    }
    results_path, _ = bp.write_outputs(out, default_timestamp(), by_task, originals, budgets, config, summary)
    _print_table(results_path, budgets)
    say(f"sent {summary['requests']} answer requests, generated {summary['responses_generated']}"
        + (f", {summary['cache']['responses_from_cache']} from the cache" if "cache" in summary else "")
        + f"; wrote {results_path}")
    return 1 if summary["failed_requests"] else 0


def _print_table(results_path: Path, budgets: list[int]) -> None:
    import json

    from lrm_backends.run.budget import ORIGINAL

    data = json.loads(results_path.read_text(encoding="utf-8"))
    print(f"{'task':<28} {'budget':>8} {'acc':>14} {'mean tokens':>12} {'forced':>7}")
    for task, res in data["results"].items():
        for label in [f"budget_{b}" for b in budgets] + [ORIGINAL]:
            acc, se = res.get(f"acc,{label}"), res.get(f"acc_stderr,{label}")
            tok, forced = res.get(f"mean_tokens,{label}"), res.get(f"forced,{label}")
            accs = "—" if acc is None else f"{100 * acc:.1f} ± {100 * (se or 0):.1f}"
            name = label.removeprefix("budget_")
            toks = "—" if tok is None else f"{tok:.0f}"
            print(f"{task:<28} {name:>8} {accs:>14} {toks:>12} {'' if forced is None else f'{100 * forced:.0f}%':>7}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lrm_backends.run.budget import CUES, DEFAULT_ANSWER_TOKENS, DEFAULT_CUE

    p = sub.add_parser(
        "budget",
        help="thinking-budget curves from saved responses (budget forcing)",
        description="Cut each saved response's reasoning at each budget (in the model's tokens), close it with "
        "</think> and a final-answer cue, let the model write a short answer and score it; responses that "
        "closed their reasoning within a budget keep their own answer. Writes OUT/budget_results_<date>.json "
        "and OUT/lrm_budget_<task>_<date>.jsonl; `lrm report OUT` draws the curves.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="saved responses: lm_eval --output_path folders, lrm_responses_*.jsonl records or samples_*.jsonl")
    p.add_argument("--model", required=True, help="any lm-eval generate backend (hf, vllm, lrm-gguf, lrm-vllm, ...)")
    p.add_argument("--model_args", default="", help="its arguments, as for lm_eval (vllm gets enable_prefix_caching=True)")
    p.add_argument("--budgets", required=True, help="reasoning budgets in tokens, e.g. 1024,2048,4096 (or 1k,2k,4k)")
    p.add_argument("--out", required=True, metavar="OUT", help="folder for the results and records")
    p.add_argument("--tasks", help="comma-separated tasks (default: every task of the saved responses)")
    p.add_argument("--answer-tokens", type=int, default=DEFAULT_ANSWER_TOKENS, metavar="M",
                   help=f"tokens the model may write after the cue (default {DEFAULT_ANSWER_TOKENS})")
    p.add_argument("--cue", default=DEFAULT_CUE, metavar="FAMILY_OR_TEXT",
                   help=f"text after </think>: a model family ({', '.join(CUES)}; default {DEFAULT_CUE}) or the text itself")
    p.add_argument("--think-end", default="</think>", help="end-of-thinking tag (default </think>)")
    p.add_argument("--apply_chat_template", action="store_true", help="build prompts with the chat template (as the original run did)")
    p.add_argument("--system_instruction", help="system instruction of the original run, if any")
    p.add_argument("--tokenizer", metavar="NAME_OR_PATH", help="tokenizer that cuts the reasoning (default: the model's)")
    p.add_argument("--limit", type=int, help="first N documents per task")
    p.add_argument("--cache", metavar="DIR", help="response cache (default OUT/cache): a rerun resumes from it")
    p.add_argument("--no-cache", action="store_true", help="no response cache")
    p.add_argument("--label", help="model name in the report (default: the model's file or folder name)")
    p.add_argument("--batch_size", default="1", help="backend batch size (default 1)")
    p.add_argument("--device", default=None, help="backend device (e.g. cuda, cpu)")
    p.set_defaults(func=run)
