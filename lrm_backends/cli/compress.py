"""``lrm compress``: prune a Hugging Face model or quantize a GGUF, with a manifest.

    lrm compress sparsegpt --model PATH_OR_HUB_ID --sparsity 0.5 [--pattern 2:4] \\
        --calib FILE|c4|wikitext2|hf:DATASET|task:NAME --out DIR
    lrm compress wanda ...       (same options)
    lrm compress magnitude ...   (no calibration)
    lrm compress gguf --model IN.gguf --type Q4_K_M --out OUT.gguf

``add_parser(subparsers)`` adds the subcommand to the ``lrm`` parser; every leaf parser
sets ``func``, a handler taking the parsed namespace and returning an exit status
(``sys.exit(args.func(args))``). Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

PRUNE_METHODS = ("sparsegpt", "wanda", "magnitude")
EXIT_USAGE = 2  # argparse's status for bad arguments
# Defaults mirror compressors.calibration (SparseGPT paper: 128 x 2048 tokens of C4);
# repeated here so that building the parser imports nothing heavy.
DEFAULT_CALIB = "c4"
DEFAULT_CALIB_SAMPLES = 128
DEFAULT_CALIB_SEQLEN = 2048
DEFAULT_TASK_PROMPT_LIMIT = None

_METHOD_HELP = {
    "sparsegpt": "SparseGPT (Frantar & Alistarh 2023): OBS weight updates from calibration Hessians",
    "wanda": "Wanda (Sun et al. 2024): |W| x input-activation norm, no weight update",
    "magnitude": "magnitude pruning: smallest |W| per matrix, no data",
}


def _sparsity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sparsity {text!r} is not a number; pass a fraction in (0, 1), e.g. 0.5"
        ) from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"sparsity {text} is outside (0, 1); pass the fraction of weights to zero, e.g. 0.5 for 50%"
        )
    return value


def _pattern(text: str) -> str:
    from compressors.masks import parse_pattern

    try:
        n, m = parse_pattern(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"{n}:{m}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _add_prune_parser(sub: Any, method: str) -> None:
    p = sub.add_parser(method, help=_METHOD_HELP[method], description=_METHOD_HELP[method])
    p.add_argument(
        "--model",
        required=True,
        help="Hugging Face model folder, Hub id, or .gguf file (dequantized to float32)",
    )
    p.add_argument("--out", required=True, help="output folder (safetensors + tokenizer + compression.json)")
    p.add_argument(
        "--sparsity",
        type=_sparsity,
        default=None,
        help="fraction of weights to zero, in (0, 1); implied by --pattern",
    )
    p.add_argument(
        "--pattern",
        type=_pattern,
        default=None,
        help="N:M semi-structured sparsity: at most N nonzeros in every M consecutive input "
        "weights (2:4, 4:8)",
    )
    if method != "magnitude":
        calib = p.add_argument_group("calibration")
        calib.add_argument(
            "--calib",
            default=DEFAULT_CALIB,
            help="a text file, c4, wikitext2, hf:DATASET[:CONFIG[:SPLIT[:FIELD]]], or task:NAME "
            "(the task's prompts) (default: %(default)s)",
        )
        calib.add_argument(
            "--calib-samples",
            type=_positive_int,
            default=DEFAULT_CALIB_SAMPLES,
            help="windows to draw (default: %(default)s)",
        )
        calib.add_argument(
            "--calib-seqlen",
            type=_positive_int,
            default=DEFAULT_CALIB_SEQLEN,
            help="tokens per window (default: %(default)s)",
        )
        calib.add_argument(
            "--seed", type=int, default=0, help="seed for drawing windows (default: %(default)s)"
        )
        calib.add_argument(
            "--no-sequential",
            dest="sequential",
            action="store_false",
            help="calibrate every layer on the dense model's activations (faster, not the papers' method)",
        )
        calib.add_argument(
            "--tokens-per-batch",
            type=_positive_int,
            default=None,
            help="calibration tokens per forward call (default: 8192)",
        )
    if method == "sparsegpt":
        algo = p.add_argument_group("SparseGPT")
        algo.add_argument(
            "--blocksize", type=_positive_int, default=None, help="columns pruned per block (default: 128)"
        )
        algo.add_argument(
            "--percdamp",
            type=float,
            default=None,
            help="Hessian dampening as a fraction of its mean diagonal (default: 0.01)",
        )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="REGEX",
        help="keep matching linear layers dense (repeatable), e.g. 'mlp\\.down_proj'",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        help="weights dtype to load and save: auto, float32, bfloat16, float16 (default: %(default)s)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="device for the computation, e.g. cuda; layers move there one at a time "
        "(default: where the model is, the CPU)",
    )
    p.add_argument("--revision", default=None, help="Hub revision of --model")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run_prune, compress_method=method)


def _add_gguf_parser(sub: Any) -> None:
    p = sub.add_parser(
        "gguf",
        help="quantize a GGUF with llama.cpp's quantizer",
        description="Quantize a GGUF file to another type with llama.cpp's own quantizer (llama-cpp-python).",
    )
    p.add_argument("--model", required=True, help="input .gguf file")
    p.add_argument(
        "--type",
        required=True,
        dest="qtype",
        help="output type: Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K, IQ4_XS, IQ3_M, ... "
        "(IQ1/IQ2 and IQ3_XXS need --imatrix)",
    )
    p.add_argument(
        "--out", required=True, help="output .gguf file (its manifest is OUT.gguf.compression.json)"
    )
    p.add_argument(
        "--imatrix", default=None, help="importance matrix from llama-imatrix (GGUF or legacy .dat)"
    )
    p.add_argument(
        "--tensor-type",
        action="append",
        default=[],
        metavar="PATTERN=TYPE",
        help="per-tensor type override, regex on GGUF tensor names (repeatable), e.g. attn_v=Q8_0",
    )
    p.add_argument("--output-tensor-type", default=None, help="type of output.weight")
    p.add_argument("--token-embedding-type", default=None, help="type of token_embd.weight")
    p.add_argument(
        "--allow-requantize", action="store_true", help="allow an already-quantized input (quality suffers)"
    )
    p.add_argument("--leave-output-tensor", action="store_true", help="do not quantize output.weight")
    p.add_argument("--pure", action="store_true", help="all tensors to --type, no per-tensor mixture")
    p.add_argument("--threads", type=int, default=0, help="quantizer threads (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run_gguf, compress_method="gguf")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compress`` and its methods to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "compress",
        help="prune (sparsegpt, wanda, magnitude) or quantize (gguf) a model",
        description="Compress a model and write a compression.json manifest beside it.",
    )
    sub = parser.add_subparsers(dest="compress_method", metavar="METHOD", required=True)
    for method in PRUNE_METHODS:
        _add_prune_parser(sub, method)
    _add_gguf_parser(sub)
    return parser


def _fail(message: str) -> int:
    print(f"lrm compress: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def task_prompts(
    name: str,
    limit: int | None = DEFAULT_TASK_PROMPT_LIMIT,
    include_path: str | None = None,
    include_defaults: bool = True,
) -> list[str]:
    """The prompts (``doc_to_text``) of an lm-eval task's evaluation documents: lm-eval's
    own tasks (unless ``include_defaults`` is false), ours, and those under
    ``include_path``."""
    from lm_eval.tasks import TaskManager

    include: list[str] = [include_path] if include_path else []
    try:
        from lrm_tasks import task_config_dir

        include.append(str(task_config_dir()))
    except (ImportError, FileNotFoundError):
        pass
    manager = TaskManager(include_path=include or None, include_defaults=include_defaults)
    prompts: list[str] = []
    for task_name, task in manager.load([name])["tasks"].items():  # a group: every member
        for i, doc in enumerate(task.eval_docs):
            if limit is not None and len(prompts) >= limit:
                break
            text = task.doc_to_text(doc)
            if isinstance(text, str) and text.strip():
                prompts.append(text)
            elif i == 0:
                logger.warning(
                    "task %s: doc_to_text gives %s, not text; skipping it", task_name, type(text).__name__
                )
                break
    if not prompts:
        raise ValueError(f"task {name!r} has no text prompts to calibrate on; choose another --calib")
    return prompts


def calibration_texts(source: str) -> list[str] | None:
    """Texts for a ``task:NAME`` source (``None`` for sources compressors reads itself)."""
    from compressors.calibration import TASK_PREFIX

    if source.startswith(TASK_PREFIX):
        return task_prompts(source[len(TASK_PREFIX) :])
    return None


def run_prune(args: argparse.Namespace) -> int:
    """Handler of ``lrm compress sparsegpt|wanda|magnitude``."""
    from compressors.calibration import CalibrationSpec
    from compressors.masks import make_target
    from compressors.pipeline import check_output_dir, prune_pretrained

    method = args.compress_method
    try:
        target = make_target(args.sparsity, args.pattern)
        check_output_dir(args.out, args.overwrite)
        spec = texts = None
        if method != "magnitude":
            spec = CalibrationSpec(
                source=args.calib,
                num_samples=args.calib_samples,
                seq_len=args.calib_seqlen,
                seed=args.seed,
            )
            texts = calibration_texts(args.calib)
        options: dict[str, Any] = {}
        for name in ("blocksize", "percdamp", "tokens_per_batch"):
            value = getattr(args, name, None)
            if value is not None:
                options[name] = value
        if getattr(args, "sequential", True) is False:
            options["sequential"] = False
        manifest = prune_pretrained(
            args.model,
            args.out,
            method=method,
            target=target,
            calibration=spec,
            texts=texts,
            overwrite=args.overwrite,
            dtype=args.dtype,
            device=args.device,
            revision=args.revision,
            trust_remote_code=args.trust_remote_code,
            ignore=tuple(args.ignore),
            progress=args.progress,
            **options,
        )
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        return _fail(str(exc))
    sparsity = manifest.sparsity or {}
    print(
        f"{method}: {args.model} -> {args.out}: sparsity {sparsity.get('achieved', 0):.4f} "
        f"(target {target.sparsity:g}{', ' + target.pattern if target.pattern else ''}) "
        f"in {manifest.wall_time_s:.1f} s"
    )
    return 0


def run_gguf(args: argparse.Namespace) -> int:
    """Handler of ``lrm compress gguf``."""
    from compressors.gguf_quant import parse_tensor_type, quantize_gguf

    try:
        overrides = dict(parse_tensor_type(spec) for spec in args.tensor_type)
        manifest = quantize_gguf(
            args.model,
            args.out,
            args.qtype,
            imatrix=args.imatrix,
            tensor_types=overrides,
            output_tensor_type=args.output_tensor_type,
            token_embedding_type=args.token_embedding_type,
            allow_requantize=args.allow_requantize,
            leave_output_tensor=args.leave_output_tensor,
            pure=args.pure,
            nthread=args.threads,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc))
    q = manifest.quantization or {}
    bpw = q.get("bits_per_weight")
    print(
        f"gguf: {args.model} -> {args.out}: {q.get('type')}"
        + (f", {bpw:.2f} bits per weight" if bpw else "")
        + f" in {manifest.wall_time_s:.1f} s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``compress`` on its own (``python -m lrm_backends.cli.compress ...``)."""
    parser = argparse.ArgumentParser(prog="lrm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
