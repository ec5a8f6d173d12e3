"""``lrm-vllm``: lm-eval's vllm model, generating in bounded chunks, with exact counts.

    lm_eval --model lrm-vllm \\
        --model_args pretrained=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B,chunk_size=128 \\
        --tasks lrm_compression --apply_chat_template

What it changes in lm-eval's ``vllm`` model (``lm_eval.models.vllm_causallms.VLLM``,
which it subclasses; everything else, loglikelihoods, chat templates, data parallelism,
LoRA, is lm-eval's):

- ``generate_until`` sends ``chunk_size`` requests (default :data:`DEFAULT_CHUNK_SIZE`)
  per ``LLM.generate`` call instead of all of them at once (``batch_size=auto``), and
  reports every response of a chunk through lm-eval's cache hook with the request's own
  arguments as soon as the chunk is done. With ``--cache`` (``lrm_backends.run.cache``) a
  crash loses at most one chunk; lm-eval's ``vllm`` reports rewritten arguments there,
  which no cache lookup can ever match.
- Responses are :class:`~lrm_tasks.text.Generation` strings carrying vllm's exact
  number of generated tokens (``len(token_ids)``) and its finish reason (``"stop"`` /
  ``"length"``), which lrm-bench's records and token metrics use
  (``count_source: "backend"``).
- A ``seed`` in a request's generation arguments reaches ``SamplingParams`` (lm-eval
  passes it through), so the cache's per-request seeds make a resumed run draw the
  samples an uninterrupted one would have (``lrm_seeding = "request"``).
- Checkpoints load as safetensors only (``load_format=safetensors``) unless
  ``load_format`` is given; ``trust_remote_code`` stays off unless given.

vllm is an optional extra (``pip install 'lrm-bench[vllm]'``). This module imports
without it; the class itself is built on first access, from lm-eval's ``VLLM``. For tests
and for reusing a loaded engine, ``VLLMBackend(..., engine=obj)`` uses ``obj`` (anything
with ``LLM.generate``'s interface and ``llm_engine.model_config.max_model_len``) instead
of constructing ``vllm.LLM``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Iterator
from typing import Any, Literal

from lrm_backends.models.lazy import LazyClass
from lrm_tasks.text import Generation

DEFAULT_CHUNK_SIZE = 128  # requests per LLM.generate call: a crash loses at most this many
FINISH_REASONS = ("stop", "length")  # the contract's values; vllm's "abort" etc. become None
DEFAULT_LOAD_FORMAT = "safetensors"
INSTALL_HINT = "pip install 'lrm-bench[vllm]' (vllm needs a CUDA GPU)"

# Types of the arguments lm-eval's VLLM and this class name (vllm_causallms.py@0.4.13),
# for validate_model_args: importing vllm to read them would take seconds and a GPU build.
ARG_TYPES: dict[str, Any] = {
    "pretrained": str,
    "dtype": Literal["float16", "bfloat16", "float32", "auto", "half", "float"],
    "revision": str | None,
    "trust_remote_code": bool,
    "tokenizer": str | None,
    "tokenizer_mode": Literal["auto", "slow", "mistral", "custom"],
    "tokenizer_revision": str | None,
    "add_bos_token": bool | None,
    "prefix_token_id": int | None,
    "tensor_parallel_size": int,
    "quantization": str | None,
    "max_gen_toks": int,
    "max_length": int | None,
    "max_model_len": int | None,
    "seed": int,
    "data_parallel_size": int,
    "lora_local_path": str | None,
    "enable_thinking": bool | None,
    "think_end_token": str | None,
    "max_lora_rank": int,
    "truncation_side": Literal["left", "right", "middle"],
    "gpu_memory_utilization": float,
    "max_num_seqs": int,
    "enforce_eager": bool,
    "load_format": str,
    "chunk_size": int,
}

_engine_lock = threading.Lock()


def _vllm_base() -> type:
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except ImportError as exc:  # vllm missing (or its metadata: PackageNotFoundError)
        raise ImportError(f"the lrm-vllm backend needs vllm, which is not installed: {INSTALL_HINT}.") from exc
    return VLLM


@contextlib.contextmanager
def _use_engine(engine: Any) -> Iterator[None]:
    """While lm-eval's VLLM.__init__ runs, its ``LLM(**model_args)`` returns ``engine``."""
    import lm_eval.models.vllm_causallms as vllm_lm

    with _engine_lock:
        original = vllm_lm.LLM
        vllm_lm.LLM = lambda *args, **kwargs: engine
        try:
            yield
        finally:
            vllm_lm.LLM = original


def _to_generation(output: Any, until: list[str], think_end_token: str | None) -> Generation:
    """One vllm ``RequestOutput`` -> the response text with vllm's own facts."""
    from lm_eval.models.utils import postprocess_generated_text

    completion = output.outputs[0]
    text = postprocess_generated_text(completion.text, until, think_end_token)
    token_ids = getattr(completion, "token_ids", None)
    finish = getattr(completion, "finish_reason", None)
    return Generation(
        text,
        generated_tokens=len(token_ids) if token_ids is not None else None,
        finish_reason=finish if finish in FINISH_REASONS else None,
    )


def _build() -> type:
    VLLM = _vllm_base()

    class VLLMBackend(VLLM):  # type: ignore[misc, valid-type]
        """lm-eval model ``lrm-vllm``; see the module docstring."""

        lrm_seeding = "request"  # SamplingParams(seed=...) per request (lrm_backends.run.cache)

        def __init__(
            self,
            pretrained: str,
            chunk_size: int = DEFAULT_CHUNK_SIZE,
            engine: Any = None,
            load_format: str | None = None,
            **kwargs: Any,
        ) -> None:
            if int(chunk_size) < 1:
                raise ValueError(f"chunk_size={chunk_size}: expected a positive integer (requests per vllm call)")
            self.chunk_size = int(chunk_size)
            kwargs["load_format"] = load_format or DEFAULT_LOAD_FORMAT
            if engine is None:
                super().__init__(pretrained, **kwargs)
            else:
                with _use_engine(engine):
                    super().__init__(pretrained, **kwargs)

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[Generation]:
            from lm_eval.models.utils import maybe_truncate
            from tqdm import tqdm
            from vllm import SamplingParams

            if not requests:
                return []
            eos = self.tokenizer.decode(self.eot_token_id) or getattr(self.tokenizer, "eos_token", None) or ""
            results: list[Generation] = []
            bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="lrm-vllm generate")
            for start in range(0, len(requests), self.chunk_size):
                chunk = requests[start : start + self.chunk_size]
                encodings = self.tok_encode([req.args[0] for req in chunk])
                prompts, params, untils = [], [], []
                for req, tokens in zip(chunk, encodings):
                    kwargs, until, max_gen_toks = self.modify_gen_kwargs(
                        dict(req.args[1]), eos=eos, default_max_gen_toks=self.max_gen_toks
                    )
                    tokens, max_gen_toks = maybe_truncate(
                        tokens, max_gen_toks=max_gen_toks, max_model_len=self.max_length,
                        side=self.truncation_side, verbose=True,
                    )
                    # As lm-eval's VLLM: with a think_end_token only EOS stops generation;
                    # task stops are applied after the reasoning is stripped.
                    stop = [s for s in until if s == eos] if self.think_end_token else until
                    prompts.append(tokens)
                    params.append(SamplingParams(max_tokens=max_gen_toks, stop=stop, **kwargs))
                    untils.append(until)
                outputs = self._model_generate(requests=prompts, generate=True, sampling_params=params)
                for req, output, until in zip(chunk, outputs, untils, strict=True):
                    generation = _to_generation(output, until, self.think_end_token)
                    results.append(generation)
                    # The request's own arguments: what a cache looks the response up by.
                    self.cache_hook.add_partial("generate_until", req.args, generation)
                bar.update(len(chunk))
            bar.close()
            return results

    return VLLMBackend


_lazy = LazyClass(__name__, "VLLMBackend", _build)
__getattr__ = _lazy.module_getattr  # VLLMBackend is built on first access


def validate_model_args(model_args: dict[str, Any]) -> None:
    """Check ``--model_args`` for lrm-vllm without importing vllm (see lrm_backends.run.validate)."""
    from lrm_backends.errors import ValidationError
    from lrm_backends.models.args import check_value

    if "engine" in model_args:
        raise ValidationError(
            "--model_args engine=...: engine is for Python callers passing a loaded vllm.LLM, "
            "not a command-line value. Remove it."
        )
    pretrained = model_args.get("pretrained")
    if not pretrained:
        raise ValidationError(
            "--model_args: the lrm-vllm backend needs pretrained=MODEL (a Hugging Face name or "
            "a local folder), and none was given. Pass e.g. --model_args pretrained=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B."
        )
    if isinstance(pretrained, str) and pretrained.startswith(("/", ".", "~")) and not os.path.exists(os.path.expanduser(pretrained)):
        raise ValidationError(
            f"--model_args pretrained={pretrained}: no such folder. Pass an existing local "
            "checkpoint folder or a Hugging Face model name."
        )
    for key, value in model_args.items():
        if key in ARG_TYPES:
            check_value("lrm-vllm", key, value, ARG_TYPES[key])
    chunk = model_args.get("chunk_size")
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1):
        raise ValidationError(
            f"--model_args chunk_size={chunk}: expected a positive integer (requests per vllm "
            f"call; a crash loses at most one chunk). Pass e.g. chunk_size={DEFAULT_CHUNK_SIZE}."
        )
    unknown = sorted(set(model_args) - set(ARG_TYPES) - _engine_arg_names())
    if unknown and _engine_arg_names():
        from lrm_backends.errors import did_you_mean

        key = unknown[0]
        hint = did_you_mean(key, sorted(set(ARG_TYPES) | _engine_arg_names()))
        raise ValidationError(
            f"--model_args {key}={model_args[key]}: neither lm-eval's vllm model nor vllm's engine "
            f"takes {key!r}.{hint} Remove it or correct the name."
        )


def _engine_arg_names() -> set[str]:
    """vllm's engine arguments (which lm-eval passes through), if a real vllm is installed."""
    if importlib.util.find_spec("vllm") is None:
        return set()
    try:
        import dataclasses

        from vllm.engine.arg_utils import EngineArgs

        return {f.name for f in dataclasses.fields(EngineArgs)}
    except Exception:  # an older or partial vllm: unknown keys are left to vllm
        return set()
