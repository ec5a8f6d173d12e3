"""``lrm-vllm``: lm-eval's vllm model, generating in bounded chunks, with exact counts.

    lm_eval --model lrm-vllm \\
        --model_args pretrained=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B,chunk_size=128 \\
        --tasks lrm_compression --apply_chat_template

What it changes in lm-eval's ``vllm`` model (``lm_eval.models.vllm_causallms.VLLM``,
which it subclasses; everything else, loglikelihoods, chat templates, LoRA, is lm-eval's):

- ``data_parallel_size=N`` runs N replicas as Ray actors that each load the model once
  per run and take chunks as they free up (``lrm_backends.models.replicas``; with
  ``tensor_parallel_size`` / ``pipeline_parallel_size`` per replica, ``ray_address=`` to
  join a cluster), instead of lm-eval's N fresh loads per call.
- A prompt is never cut: when prompt + ``max_gen_toks`` exceeds ``max_model_len`` that
  request's budget is lowered (the response's ``max_gen_toks``, recorded); a prompt that
  alone fills the context fails with a message naming ``max_model_len``.

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
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any, Literal

from lrm_backends.models.lazy import LazyClass
from lrm_tasks.text import Generation

log = logging.getLogger(__name__)

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
    "ray_address": str | None,
}

_engine_lock = threading.Lock()


def _vllm_base() -> type:
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except ImportError as exc:  # vllm missing (or its metadata: PackageNotFoundError)
        raise ImportError(f"the lrm-vllm backend needs vllm, which is not installed: {INSTALL_HINT}.") from exc
    return VLLM


@contextlib.contextmanager
def _use_engine(engine: Any, factory: Any = None) -> Iterator[None]:
    """While lm-eval's VLLM.__init__ runs, its ``LLM(**model_args)`` returns ``engine``
    (or ``factory(**model_args)``)."""
    import lm_eval.models.vllm_causallms as vllm_lm

    with _engine_lock:
        original = vllm_lm.LLM
        vllm_lm.LLM = factory or (lambda *args, **kwargs: engine)
        try:
            yield
        finally:
            vllm_lm.LLM = original


def _facts(output: Any) -> tuple[str, int | None, str | None]:
    """One vllm ``RequestOutput`` -> (text, generated tokens, finish reason)."""
    completion = output.outputs[0]
    token_ids = getattr(completion, "token_ids", None)
    return completion.text, len(token_ids) if token_ids is not None else None, getattr(completion, "finish_reason", None)


def _to_generation(facts: tuple[str, int | None, str | None], until: list[str], think_end_token: str | None,
                   budget: int | None = None) -> Generation:
    """vllm's (text, generated tokens, finish reason) -> the response with those facts."""
    from lm_eval.models.utils import postprocess_generated_text

    text, n_tokens, finish = facts
    return Generation(
        postprocess_generated_text(text, until, think_end_token),
        generated_tokens=n_tokens,
        finish_reason=finish if finish in FINISH_REASONS else None,
        max_gen_toks=budget,
    )


class PromptTooLongError(ValueError):
    """A prompt that leaves no room to generate within max_model_len (never cut)."""


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
            # Data parallelism is ours: replicas that load once per run (models/replicas.py).
            data_parallel_size = int(kwargs.pop("data_parallel_size", 1) or 1)
            ray_address = kwargs.pop("ray_address", None)
            self.replica_pool = None
            self._warned_budget = False
            if data_parallel_size > 1:
                from lrm_backends.models import replicas

                replicas.require_ray("lrm-vllm data_parallel_size > 1")
                if engine is not None:
                    raise ValueError("engine=... is one loaded engine: it cannot be combined with data_parallel_size > 1")
                with _use_engine(None, factory=replicas.VLLMConfigOnly):
                    super().__init__(pretrained, **kwargs)
                self.replica_pool = replicas.ReplicaPool(
                    replicas.vllm_replica_spec(self.model.engine_args), data_parallel_size,
                    ray_address=ray_address, what="lrm-vllm replicas",
                )
            elif engine is None:
                super().__init__(pretrained, **kwargs)
            else:
                with _use_engine(engine):
                    super().__init__(pretrained, **kwargs)

        def lrm_summary(self) -> dict[str, Any]:
            """Replica facts for the results' ``lrm`` block (empty without replicas)."""
            return self.replica_pool.summary() if self.replica_pool is not None else {}

        def close_replicas(self) -> None:
            """Stop the replicas (and a Ray instance they started)."""
            if self.replica_pool is not None:
                self.replica_pool.close()

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[Generation]:
            from tqdm import tqdm
            from vllm import SamplingParams

            if not requests:
                return []
            eos = self.tokenizer.decode(self.eot_token_id) or getattr(self.tokenizer, "eos_token", None) or ""
            encodings = self.tok_encode([req.args[0] for req in requests])
            prompts, params, untils, budgets = [], [], [], []
            for i, (req, tokens) in enumerate(zip(requests, encodings)):
                kwargs, until, max_gen_toks = self.modify_gen_kwargs(
                    dict(req.args[1]), eos=eos, default_max_gen_toks=self.max_gen_toks
                )
                max_gen_toks = self._budget(i, req, len(tokens), int(max_gen_toks))
                # As lm-eval's VLLM: with a think_end_token only EOS stops generation;
                # task stops are applied after the reasoning is stripped.
                stop = [s for s in until if s == eos] if self.think_end_token else until
                prompts.append(tokens)
                params.append(SamplingParams(max_tokens=max_gen_toks, stop=stop, **kwargs))
                untils.append(until)
                budgets.append(max_gen_toks)
            starts = list(range(0, len(requests), self.chunk_size))
            results: list[Generation | None] = [None] * len(requests)
            bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="lrm-vllm generate")

            def finish(c: int, facts: list[tuple[str, int | None, str | None]]) -> None:
                first = starts[c]
                for i, one in enumerate(facts, start=first):
                    generation = _to_generation(one, untils[i], self.think_end_token, budgets[i])
                    results[i] = generation
                    # The request's own arguments: what a cache looks the response up by.
                    self.cache_hook.add_partial("generate_until", requests[i].args, generation)
                bar.update(len(facts))

            end = [min(s + self.chunk_size, len(requests)) for s in starts]
            if self.replica_pool is not None:
                payloads = [(prompts[a:b], params[a:b]) for a, b in zip(starts, end)]
                try:
                    self.replica_pool.run(payloads, finish)
                finally:
                    bar.close()
            else:
                for c, (a, b) in enumerate(zip(starts, end)):
                    outputs = self._model_generate(requests=prompts[a:b], generate=True, sampling_params=params[a:b])
                    finish(c, [_facts(o) for o in outputs])
                bar.close()
            return results  # type: ignore[return-value]

        def _budget(self, i: int, req: Any, n_prompt: int, max_gen_toks: int) -> int:
            """The request's real token budget: never more than the context leaves after
            the whole prompt (lm-eval's maybe_truncate would cut the prompt instead)."""
            room = self.max_length - n_prompt
            if room <= 0:
                where = f"task {getattr(req, 'task_name', None)}, doc_id {getattr(req, 'doc_id', None)}"
                raise PromptTooLongError(
                    f"request {i} ({where}): the prompt is {n_prompt} tokens and max_model_len="
                    f"{self.max_length} leaves no room to generate. lrm-vllm never cuts a prompt: pass a "
                    "larger max_model_len in --model_args or shorten the prompt."
                )
            if max_gen_toks > room:
                if not self._warned_budget:
                    self._warned_budget = True
                    log.warning(
                        "lrm-vllm: prompt + max_gen_toks (%d + %d) exceeds max_model_len=%d: that request's "
                        "budget is lowered to %d (recorded as its max_gen_toks; the prompt is never cut). "
                        "Pass a larger max_model_len to avoid it (warned once per run).",
                        n_prompt, max_gen_toks, self.max_length, room,
                    )
                return room
            return max_gen_toks

    return VLLMBackend


_lazy = LazyClass(__name__, "VLLMBackend", _build)
__getattr__ = _lazy.module_getattr  # VLLMBackend is built on first access


def validate_model_args(model_args: dict[str, Any]) -> None:
    """Check ``--model_args`` for lrm-vllm without importing vllm (see lrm_backends.run.validate)."""
    from lrm_backends.errors import ValidationError, check_value

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
        hint = did_you_mean(key, set(ARG_TYPES) | _engine_arg_names())
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
