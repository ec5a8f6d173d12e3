"""``lrm compress``: prune a Hugging Face model or quantize a GGUF, with a manifest.

    lrm compress sparsegpt --model PATH_OR_HUB_ID --sparsity 0.5 [--pattern 2:4] \\
        --calib FILE|c4|wikitext2|hf:DATASET|task:NAME --out DIR
    lrm compress wanda ...       (same options)
    lrm compress magnitude ...   (no calibration)
    (one subcommand per row of compressors.methods, with that row's knobs)
    lrm compress gguf --model IN.gguf --type Q4_K_M --out OUT.gguf

``add_parser(subparsers)`` adds the subcommand to the ``lrm`` parser; every leaf parser
sets ``func``, a handler taking the parsed namespace and returning an exit status
(``sys.exit(args.func(args))``). Heavy imports happen inside the handlers
(``compressors.methods`` is standard library only).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from compressors.methods import (
    CALIBRATION_KNOBS,
    TARGET_KNOBS,
    Knob,
    MethodSpec,
    get_method,
    method_names,
    methods,
    positive_integer,
)

logger = logging.getLogger(__name__)

EXIT_USAGE = 2  # argparse's status for bad arguments
# The orchestration's batch size (compressors.orchestrate.DEFAULT_TOKENS_PER_BATCH, not
# imported: that module needs torch), a knob of every method that calibrates.
_TOKENS_PER_BATCH = Knob(
    "tokens_per_batch", int, None, "calibration tokens per forward call (default: 8192)", check=positive_integer
)


def _argument_type(knob: Knob) -> Callable[[str], Any]:
    """``knob.parse`` as an ``argparse`` type (its message becomes the usage error)."""

    def parse(text: str) -> Any:
        try:
            return knob.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = knob.name
    return parse


def _add_knob(group: Any, knob: Knob, default: Any) -> None:
    """``--knob-name`` from its row; the help shows the table's default."""
    shown = f" (default: {knob.default})" if knob.default is not None and default is None else ""
    shown = " (default: %(default)s)" if default is not None else shown
    group.add_argument(knob.flag, type=_argument_type(knob), default=default, help=knob.help + shown)


def _add_prune_parser(sub: Any, spec: MethodSpec) -> None:
    p = sub.add_parser(spec.name, help=spec.help, description=spec.help)
    p.add_argument(
        "--model",
        required=True,
        help="Hugging Face model folder, Hub id, or .gguf file (dequantized to float32)",
    )
    p.add_argument("--out", required=True, help="output folder (safetensors + tokenizer + compression.json)")
    for knob in TARGET_KNOBS:
        _add_knob(p, knob, None)
    if spec.needs_calibration:
        calib = p.add_argument_group("calibration")
        for knob in CALIBRATION_KNOBS:
            _add_knob(calib, knob, knob.default)
        calib.add_argument(
            "--no-sequential",
            dest="sequential",
            action="store_false",
            help="calibrate every layer on the dense model's activations (faster, not the papers' method)",
        )
        _add_knob(calib, _TOKENS_PER_BATCH, None)
    if spec.knobs:
        own = p.add_argument_group(spec.title or spec.name)
        for knob in spec.knobs:
            _add_knob(own, knob, None)  # unset: the pipeline applies the table's default
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
    p.set_defaults(func=run_prune, compress_method=spec.name)


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
        help=f"prune ({', '.join(method_names())}) or quantize (gguf) a model",
        description="Compress a model and write a compression.json manifest beside it.",
    )
    sub = parser.add_subparsers(dest="compress_method", metavar="METHOD", required=True)
    for spec in methods():
        _add_prune_parser(sub, spec)
    _add_gguf_parser(sub)
    return parser


def _fail(message: str) -> int:
    print(f"lrm compress: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_prune(args: argparse.Namespace) -> int:
    """Handler of ``lrm compress METHOD`` for every pruning method of the table."""
    from compressors.calibration import CalibrationSpec
    from compressors.masks import make_target
    from compressors.pipeline import check_output_dir, prune_pretrained
    from lrm_backends.models.pruned import calibration_texts

    method = args.compress_method
    try:
        target = make_target(args.sparsity, args.pattern)
        check_output_dir(args.out, args.overwrite)
        spec = texts = None
        if get_method(method).needs_calibration:
            spec = CalibrationSpec(
                source=args.calib,
                num_samples=args.calib_samples,
                seq_len=args.calib_seqlen,
                seed=args.seed,
            )
            texts = calibration_texts(args.calib)
        options: dict[str, Any] = {}
        for name in (*(k.name for k in get_method(method).knobs), "tokens_per_batch"):
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
