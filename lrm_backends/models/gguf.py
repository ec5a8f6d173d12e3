"""``lrm-gguf``: quantized GGUF models run in process with llama-cpp-python.

    lm_eval --model lrm-gguf \\
        --model_args pretrained=DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf,n_ctx=40960,n_gpu_layers=-1

Unlike lm-eval's ``gguf`` model (an HTTP client for a llama.cpp server that ignores
``max_gen_toks`` and temperature and returns no token counts), this backend runs the
quantized weights directly (no dequantization) and returns :class:`Generation` strings
carrying the exact number of generated tokens and the finish reason.

Model arguments (``--model_args k=v,...``):

- ``pretrained``: the ``.gguf`` file; for multi-part GGUFs name the first part
  (``...-00001-of-00003.gguf``): llama.cpp loads the other parts itself.
- ``n_ctx``: context size in tokens (default: the model's training context, capped at
  :data:`DEFAULT_N_CTX_CAP`).  ``n_threads`` (default: llama.cpp's choice),
  ``n_threads_batch`` (default: ``n_threads``), ``n_gpu_layers`` (0; -1 = all),
  ``n_batch`` (512), ``flash_attn`` (false).
- ``type_k`` / ``type_v``: KV cache element type (``f16`` default, ``f32``, ``q8_0``,
  ``q4_0``, ...).  Unsloth's R1 recipe uses ``type_k=q4_0``.
- ``chat_template``: for ``--apply_chat_template``; default the GGUF's own
  ``tokenizer.chat_template``; or the name of another template stored in the GGUF, a
  ``.jinja`` file, or a template string.
- ``max_gen_toks`` (256, lm-eval's default; a task's ``generation_kwargs`` wins),
  ``seed`` (1234; request ``i`` of a call samples with ``seed + i`` so repeats differ; a
  request whose generation kwargs carry its own ``seed`` samples with exactly that one, as
  vLLM's ``SamplingParams(seed=...)`` does, so lrm-bench's per-request seeds (derived from
  each request's key) make a run the same with or without ``--cache``).
- ``verbose`` (false): llama.cpp's own log.
- ``extra_bufts`` (default: off on CPUs with AMX, on elsewhere): llama.cpp's extra
  weight buffer types (the AMX and CPU repacking of quantized weights).  Its AMX matrix
  multiply crashes the process (SIGSEGV) on some Sapphire Rapids machines with Q4_0/Q4_1/
  Q4_K models (llama.cpp issue 20824), so on a CPU whose llama.cpp build reports
  ``AMX_INT8 = 1`` it is off unless you pass ``extra_bufts=true``.

Each response is a :class:`~lrm_tasks.text.Generation`: ``generated_tokens`` counts the
tokens the model produced, the end-of-generation token excluded and the tokens that
completed a stop string included (the definition of llama-cpp-python's
``usage.completion_tokens``); ``finish_reason`` is ``"stop"`` (end of generation or a
stop string) or ``"length"`` (``max_gen_toks`` or the context end reached).

``generate_until`` honours ``until``, ``max_gen_toks``, ``temperature``/``do_sample``,
``top_p``, ``top_k``, ``min_p``, ``repetition_penalty`` and ``seed`` from the task's
generation kwargs.  With no sampling keys decoding is greedy; when sampling, only the
filters the task names are applied (llama-cpp-python's own defaults ``top_k=40,
top_p=0.95, min_p=0.05`` are not).
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import normalize_gen_kwargs
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from lrm_backends.tokenizers import (  # noqa: F401  (GGUFTokenizer, gguf_context_length: re-exported)
    GGUFModelError,
    GGUFTokenizer,
    _import_llama_cpp,
    gguf_context_length,
    resolve_gguf_path,
)
from lrm_backends.run.settings import truthy
from lrm_tasks.text import Generation

log = logging.getLogger(__name__)

# R1's recommended generation budget (32768 tokens) plus room for the prompt: the
# model's own 163840-token training context would allocate a KV cache for nothing.
DEFAULT_N_CTX_CAP = 40960
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's default when a task names no max_gen_toks
DEFAULT_SEED = 1234
# Requests per chunk dealt to a replica (replicas > 1): small, since each replica runs
# one request at a time; a lost replica costs at most this many regenerations.
DEFAULT_REPLICA_CHUNK = 8
# Context rows for the scoring instance are allocated in steps of this many tokens.
SCORING_CTX_STEP = 512
# Generation keys we honour; anything else in a task's generation_kwargs is warned about.
_KNOWN_GEN_KEYS = {
    "until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "seed",
}
# Neutral settings of llama.cpp's samplers (top_k <= 0 and min_p = 0 disable them).
_NEUTRAL_SAMPLING = {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}


def _kv_type(llama_cpp: Any, name: str | None, arg: str) -> int | None:
    if name is None:
        return None
    value = getattr(llama_cpp, f"GGML_TYPE_{str(name).upper()}", None)
    if value is None:
        raise GGUFModelError(
            f"{arg}={name!r} is not a ggml type; use f16 (default), f32, bf16, q8_0, "
            "q5_1, q5_0, q4_1 or q4_0"
        )
    return value


def has_amx(llama_cpp: Any) -> bool:
    """Whether this llama.cpp build uses AMX on this CPU (its system info line says
    ``AMX_INT8 = 1``)."""
    try:
        info = llama_cpp.llama_print_system_info()
    except Exception:  # noqa: BLE001  (an older binding: assume no AMX)
        return False
    if isinstance(info, bytes):
        info = info.decode("utf-8", "replace")
    return bool(re.search(r"\bAMX_INT8 = 1\b", str(info)))


_AMX_NOTICE: list[bool] = []


def default_extra_bufts(llama_cpp: Any) -> bool:
    """llama.cpp's extra weight buffer types stay on, except on AMX CPUs, where its AMX
    matrix multiply can crash the process (llama.cpp issue 20824)."""
    if not has_amx(llama_cpp):
        return True
    if not _AMX_NOTICE:
        _AMX_NOTICE.append(True)
        log.info("lrm-gguf: this CPU has AMX; llama.cpp's AMX weight repacking is off (it can crash: "
                 "llama.cpp issue 20824). Pass --model_args extra_bufts=true to turn it on.")
    return False


_LOAD_LOCK = threading.Lock()


def load_llama(path: str | Path, *, extra_bufts: bool | None = None, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(model_path=path, **kwargs)``, with llama.cpp's extra weight
    buffer types (AMX / CPU repacking) on or off (``None``: :func:`default_extra_bufts`).

    llama-cpp-python has no keyword for ``llama_model_params.use_extra_bufts``; its
    ``Llama`` takes the parameters from ``llama_model_default_params()``, so that is
    wrapped while the model loads (under a lock)."""
    llama_cpp = _import_llama_cpp()
    if extra_bufts is None:
        extra_bufts = default_extra_bufts(llama_cpp)
    if extra_bufts:
        return llama_cpp.Llama(model_path=str(path), **kwargs)
    import llama_cpp.llama as llama_module

    binding = llama_module.llama_cpp  # the low-level module Llama.__init__ calls
    original = binding.llama_model_default_params

    def without_extra_bufts():
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        binding.llama_model_default_params = without_extra_bufts
        try:
            return llama_cpp.Llama(model_path=str(path), **kwargs)
        finally:
            binding.llama_model_default_params = original


class GGUFBackend(TemplateLM):
    """lm-eval model ``lrm-gguf``: a GGUF model in process via llama-cpp-python."""

    lrm_seeding = "request"  # honours each request's own gen_kwargs["seed"] (lrm_backends.run.cache)

    # Examples for error messages where the default is None ("the model's own"):
    # n_ctx's cap is what None means for R1-sized contexts.
    EXAMPLE_ARGS = {"n_ctx": DEFAULT_N_CTX_CAP, "n_threads": 8, "n_gpu_layers": -1}

    def __init__(
        self,
        pretrained: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_gpu_layers: int = 0,
        n_batch: int = 512,
        flash_attn: bool = False,
        type_k: str | None = None,
        type_v: str | None = None,
        chat_template: str | None = None,
        max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
        seed: int = DEFAULT_SEED,
        verbose: bool = False,
        extra_bufts: bool | None = None,
        replicas: int = 1,
        ray_address: str | None = None,
        chunk_size: int = DEFAULT_REPLICA_CHUNK,
        # lm-eval passes these to every model; llama.cpp runs one sequence at a time.
        batch_size: Any = None,
        max_batch_size: Any = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        if not pretrained:
            raise GGUFModelError(
                "lrm-gguf needs the model file: --model_args pretrained=PATH.gguf"
            )
        self.path = resolve_gguf_path(pretrained)
        self.replica_pool = None
        self._replicas, self.chunk_size = int(replicas), max(1, int(chunk_size))
        if self._replicas > 1:
            from lrm_backends.models.replicas import require_ray

            require_ray("lrm-gguf replicas > 1")  # before any model loads
        llama_cpp = _import_llama_cpp()
        self._llama_cpp = llama_cpp
        if device and str(device).startswith("cuda") and not n_gpu_layers:
            log.info("lrm-gguf: --device %s is not used; llama.cpp offloads with n_gpu_layers=-1", device)
        self.max_gen_toks = int(max_gen_toks)
        self.seed = int(seed)
        self._verbose = bool(verbose)
        self._load_kwargs: dict[str, Any] = dict(
            n_gpu_layers=int(n_gpu_layers),
            n_batch=int(n_batch),
            n_threads=n_threads,
            n_threads_batch=n_threads_batch or n_threads,
            flash_attn=bool(flash_attn),
            type_k=_kv_type(llama_cpp, type_k, "type_k"),
            type_v=_kv_type(llama_cpp, type_v, "type_v"),
            seed=self.seed,
            verbose=self._verbose,
        )
        self._extra_bufts = default_extra_bufts(llama_cpp) if extra_bufts is None else truthy(extra_bufts)
        self._llm: Any = None  # the one llama.cpp instance held (see _use)
        self._llm_logits_all = False
        self._vocab: Any = None
        # Closes whatever instance is held when this backend is collected or at exit
        # (Llama.__del__ during interpreter teardown prints tracebacks).
        self._holder: list[Any] = [None]
        weakref.finalize(self, _close_held, self._holder)
        self._pieces: dict[int, bytes] = {}
        self._warned: set[str] = set()
        if n_ctx is None:
            n_ctx = min(gguf_context_length(self.path) or DEFAULT_N_CTX_CAP, DEFAULT_N_CTX_CAP)
        self.n_ctx = int(n_ctx)
        # Load now: a bad file fails before any request. With replicas the weights live in
        # them; this process keeps the vocabulary only (tokenizing, chat template).
        llm = self._use(logits_all=False, vocab_only=self._replicas > 1)
        self._chat_template_src = self._pick_chat_template(chat_template, llm.metadata)
        self._bos_id = int(llm.token_bos())
        self._eos_id = int(llm.token_eos())
        self._bos_text = self._token_text(self._bos_id, special=True) if self._bos_id >= 0 else ""
        self._eos_text = self._token_text(self._eos_id, special=True) if self._eos_id >= 0 else ""
        # lrm-bench's token counter splits reasoning/answer counts with lm.tokenizer.
        self.tokenizer = GGUFTokenizer(lambda: self._llm, self.path.name)
        if self._replicas > 1:
            from lrm_backends.models.replicas import ReplicaPool, gguf_replica_spec

            args = dict(pretrained=str(self.path), n_ctx=self.n_ctx, n_threads=n_threads,
                        n_threads_batch=n_threads_batch, n_gpu_layers=n_gpu_layers, n_batch=n_batch,
                        flash_attn=flash_attn, type_k=type_k, type_v=type_v, chat_template=chat_template,
                        max_gen_toks=max_gen_toks, seed=seed, verbose=verbose,
                        extra_bufts=self._extra_bufts)
            cls = type(self)
            self.replica_pool = ReplicaPool(gguf_replica_spec(f"{cls.__module__}:{cls.__qualname__}", args),
                                            self._replicas, ray_address=ray_address, what="lrm-gguf replicas")

    def lrm_summary(self) -> dict[str, Any]:
        """Replica facts for the results' ``lrm`` block (empty without replicas)."""
        return self.replica_pool.summary() if self.replica_pool is not None else {}

    def close_replicas(self) -> None:
        """Stop the replicas (and a Ray instance they started)."""
        if self.replica_pool is not None:
            self.replica_pool.close()

    # ------------------------------------------------------------------ loading
    def _load(self, *, n_ctx: int, logits_all: bool = False, vocab_only: bool = False):
        llama_cpp = self._llama_cpp
        kwargs = {k: v for k, v in self._load_kwargs.items() if v is not None}
        if vocab_only:
            kwargs["vocab_only"] = True
        try:
            return load_llama(self.path, extra_bufts=self._extra_bufts, n_ctx=n_ctx,
                              logits_all=logits_all, **kwargs)
        except ValueError as exc:
            raise GGUFModelError(
                f"llama.cpp could not load {self.path} ({exc}). Is it a model "
                f"architecture that llama-cpp-python {llama_cpp.__version__} supports, "
                "and does it fit in memory? Rerun with verbose=True for llama.cpp's log."
            ) from exc

    def _use(self, *, logits_all: bool, n_ctx: int | None = None, vocab_only: bool = False) -> Any:
        """The llama.cpp instance for generation (``logits_all=False``, full n_ctx) or
        for scoring (``logits_all=True``: every position's logits are kept in
        ``Llama.scores``, so it is sized to the requests at hand).  One is held at a
        time; lm-eval sends each request type in one call, so switching is rare."""
        n_ctx = n_ctx or self.n_ctx
        held = self._llm
        if (held is not None and self._llm_logits_all == logits_all and held.n_ctx() >= n_ctx
                and (vocab_only or not getattr(self, "_llm_vocab_only", False))):
            return held
        if held is not None:
            log.info("lrm-gguf: reloading %s with logits_all=%s, n_ctx=%d", self.path.name, logits_all, n_ctx)
            self._llm = self._holder[0] = None
            held.close()
        llm = self._load(n_ctx=n_ctx, logits_all=logits_all, vocab_only=vocab_only)
        self._llm = self._holder[0] = llm
        self._llm_logits_all, self._llm_vocab_only = logits_all, vocab_only
        self._vocab = self._llama_cpp.llama_model_get_vocab(llm.model)  # per loaded model
        return llm

    @staticmethod
    def _pick_chat_template(choice: str | None, md: dict[str, str]) -> str | None:
        named = {k[len("tokenizer.chat_template."):]: v for k, v in md.items() if k.startswith("tokenizer.chat_template.")}
        if choice is None or choice is True or choice == "default":
            return md.get("tokenizer.chat_template")
        choice = str(choice)
        if choice in named:
            return named[choice]
        if "{{" in choice or "{%" in choice:
            return choice
        if Path(choice).expanduser().is_file():
            return Path(choice).expanduser().read_text(encoding="utf-8")
        raise GGUFModelError(
            f"chat_template={choice!r} is neither a template stored in the GGUF "
            f"({', '.join(['default', *named]) if 'tokenizer.chat_template' in md else ', '.join(named) or 'none stored'}), "
            "nor a .jinja file, nor a Jinja template string"
        )

    # ------------------------------------------------------------- tokenizer
    def _token_text(self, token: int, *, special: bool) -> str:
        return self._piece(token, special=special).decode("utf-8", errors="replace")

    def _piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token, as llama.cpp renders it (control tokens render as
        nothing unless ``special``).  Cached: generation calls this per token."""
        key = token if not special else -1 - token
        piece = self._pieces.get(key)
        if piece is None:
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = self._llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, special)
                if n >= 0:
                    piece = self._pieces[key] = buf.raw[:n]
                    return piece
                size = -n  # a negative result is the size it needs
        return piece

    @property
    def eot_token_id(self) -> int:
        return self._eos_id

    @property
    def prefix_token_id(self) -> int:
        # Empty-context loglikelihood conditions on BOS where the model has one.
        return self._bos_id if self._bos_id >= 0 else self._eos_id

    @property
    def max_length(self) -> int:
        return self.n_ctx

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """Tokenize with the GGUF's tokenizer; special-token text (chat markup) is
        parsed.  BOS follows the GGUF's ``add_bos_token`` unless ``add_special_tokens``
        is False, and is never doubled when ``string`` already starts with it (chat
        templates such as R1's emit it themselves)."""
        add_bos = add_special_tokens is not False
        if add_bos and self._bos_text and string.startswith(self._bos_text):
            add_bos = False
        return self._llm.tokenize(string.encode("utf-8"), add_bos=add_bos, special=True)

    def tok_decode(self, tokens: Iterable[int]) -> str:
        return b"".join(self._piece(t) for t in tokens).decode("utf-8", errors="replace")

    @property
    def tokenizer_name(self) -> str:
        return re.sub(r"[^\w.-]", "__", self.path.name)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self._chat_template_src or ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Render ``chat_history`` with the GGUF's own chat template (Jinja, as HF
        ``apply_chat_template`` does, via llama-cpp-python's formatter)."""
        if not self._chat_template_src:
            raise GGUFModelError(
                f"{self.path.name} stores no chat template (tokenizer.chat_template); "
                "pass chat_template=PATH.jinja in --model_args, or drop --apply_chat_template"
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=self._chat_template_src,
            eos_token=self._eos_text,
            bos_token=self._bos_text,
            add_generation_prompt=add_generation_prompt,
        )
        return formatter(messages=chat_history).prompt

    # ------------------------------------------------------------- generation
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[Generation]:
        if not requests:
            return []
        llm = self._use(logits_all=False, vocab_only=self.replica_pool is not None)
        prepared = []
        for i, req in enumerate(requests):
            context, gen_kwargs = req.args
            kwargs = normalize_gen_kwargs(dict(gen_kwargs or {}), self.max_gen_toks)
            unknown = sorted(set(kwargs) - _KNOWN_GEN_KEYS)
            if unknown:
                self._warn_once("unknown-kwargs", f"lrm-gguf ignores generation kwargs {unknown}; it honours {sorted(_KNOWN_GEN_KEYS)}")
            tokens = self.tok_encode(context)
            if len(tokens) >= self.n_ctx:
                raise GGUFModelError(
                    f"request {i} ({_where(req)}): the prompt is {len(tokens)} tokens but "
                    f"n_ctx={self.n_ctx} leaves no room to generate. Pass a larger n_ctx in "
                    "--model_args (and memory for its KV cache) or shorten the prompt; "
                    "nothing was generated."
                )
            prepared.append((req, tokens, kwargs))
        n_ctx = self.n_ctx if self.replica_pool is not None else llm.n_ctx()
        if self.replica_pool is not None:
            return self._generate_on_replicas(prepared, n_ctx, disable_tqdm)
        results = []
        for i, (req, tokens, kwargs) in enumerate(tqdm(prepared, disable=disable_tqdm, desc="lrm-gguf generate")):
            budget = self._fit_budget(tokens, kwargs, n_ctx)
            out = self._generate(tokens, kwargs, budget, seed=self._request_seed(kwargs, i))
            results.append(out)
            self.cache_hook.add_partial("generate_until", req.args, out)
        return results

    def _request_seed(self, kwargs: dict, i: int) -> int:
        """The request's own ``seed`` when it carries one; else ``seed + i`` (i: its index
        in this call, so repeats of one prompt differ)."""
        if kwargs.get("seed") is not None:
            return int(kwargs["seed"])
        return self.seed + i

    def _generate_on_replicas(self, prepared: list, n_ctx: int, disable_tqdm: bool) -> list[Generation]:
        """The same requests, seeds and budgets as one process would use, in chunks dealt
        to the replicas; each chunk reported to the cache hook as it returns."""
        from lrm_backends.models.replicas import chunked

        items = [(tokens, kwargs, self._fit_budget(tokens, kwargs, n_ctx), self._request_seed(kwargs, i))
                 for i, (_, tokens, kwargs) in enumerate(prepared)]
        starts = list(range(0, len(items), self.chunk_size))
        results: list[Any] = [None] * len(items)
        bar = tqdm(total=len(items), disable=disable_tqdm, desc="lrm-gguf generate (replicas)")

        def finish(c: int, outs: list[Generation]) -> None:
            for i, out in enumerate(outs, start=starts[c]):
                results[i] = out
                self.cache_hook.add_partial("generate_until", prepared[i][0].args, out)
            bar.update(len(outs))

        try:
            self.replica_pool.run(chunked(items, self.chunk_size), finish)
        finally:
            bar.close()
        return results

    def _fit_budget(self, tokens: list[int], kwargs: dict, n_ctx: int) -> int:
        """The request's budget, capped where the context ends."""
        budget = int(kwargs["max_gen_toks"])
        if len(tokens) + budget > n_ctx:
            self._warn_once(
                "context-cap",
                f"prompt + max_gen_toks ({len(tokens)} + {budget}) exceeds n_ctx={n_ctx}: "
                "generation stops at the context end (finish_reason 'length'); pass a larger n_ctx to "
                "avoid it (warned once per run)"
            )
            budget = n_ctx - len(tokens)
        return budget

    def _generate(self, tokens: list[int], kwargs: dict, budget: int, *, seed: int) -> Generation:
        llm, llama_cpp, vocab = self._llm, self._llama_cpp, self._vocab
        sampling = dict(_NEUTRAL_SAMPLING)
        if kwargs.get("do_sample") and float(kwargs.get("temperature", 0.0)) > 0.0:
            temp = float(kwargs["temperature"])
            for ours, theirs in (("top_k", "top_k"), ("top_p", "top_p"), ("min_p", "min_p"), ("repeat_penalty", "repetition_penalty")):
                if kwargs.get(theirs) is not None:
                    sampling[ours] = type(sampling[ours])(kwargs[theirs])
        else:
            temp = 0.0  # llama.cpp's greedy sampler
        stops = [s.encode("utf-8") for s in kwargs.get("until") or [] if s]
        longest_stop = max((len(s) for s in stops), default=0)
        llm.set_seed(seed)
        text = bytearray()
        n_generated, finish = 0, "length"
        if budget > 0:
            for token in llm.generate(tokens, temp=temp, typical_p=1.0, reset=True, **sampling):
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                n_generated += 1
                piece = self._piece(token)
                start = max(0, len(text) - longest_stop + 1)
                text += piece
                if stops and any(text.find(s, start) >= 0 for s in stops):
                    finish = "stop"
                    break
                if n_generated >= budget:
                    break
        # Invalid UTF-8 (a character cut by the length limit, or byte tokens that never
        # form one) becomes U+FFFD, as HF tokenizers' decode does.
        out = bytes(text).decode("utf-8", errors="replace")
        for s in kwargs.get("until") or []:
            if s:
                out = out.split(s)[0]
        return Generation(out, generated_tokens=n_generated, finish_reason=finish)

    # ------------------------------------------------------------- scoring
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None) -> list[tuple[float, bool]]:
        """Sum of log-probabilities of each continuation and whether it is the greedy
        one, from ``Llama.eval()`` and the logits it stores in ``Llama.scores``
        (llama-cpp-python 0.3.x's ``echo=True`` prompt logprobs are wrong)."""
        if not requests:
            return []
        windows = []
        for (pair, context_enc, continuation_enc) in requests:
            # As HFLM: keep the last n_ctx+1 tokens, feed all but the final one.
            whole = (list(context_enc) + list(continuation_enc))[-(self.n_ctx + 1):]
            n_cont = min(len(continuation_enc), len(whole) - 1)
            windows.append((pair, whole[:-1], whole[len(whole) - n_cont:]))
        longest = max(len(inp) for _, inp, _ in windows)
        n_ctx = min(self.n_ctx, math.ceil(max(longest, 1) / SCORING_CTX_STEP) * SCORING_CTX_STEP)
        llm = self._use(logits_all=True, n_ctx=n_ctx)
        recurrent = bool(getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False))
        # Neighbouring requests share their context (multiple choice): sort so each
        # reuses the KV cache and the stored logits of the previous one.
        order = sorted(range(len(windows)), key=lambda j: windows[j][1])
        results: list[tuple[float, bool] | None] = [None] * len(windows)
        for j in tqdm(order, disable=disable_tqdm, desc="lrm-gguf loglikelihood"):
            pair, inp, cont = windows[j]
            keep = 0 if recurrent else _common_prefix(llm.input_ids[: llm.n_tokens], inp)
            llm.n_tokens = keep  # eval() drops the KV cache past n_tokens
            if keep < len(inp):
                llm.eval(inp[keep:])
            rows = np.asarray(llm.scores[len(inp) - len(cont): len(inp)], dtype=np.float64)
            logprobs = rows - _logsumexp(rows)
            cont_arr = np.asarray(cont)
            logprob = float(logprobs[np.arange(len(cont)), cont_arr].sum())
            greedy = bool((rows.argmax(axis=1) == cont_arr).all())
            results[j] = (logprob, greedy)
            if pair is not None:
                self.cache_hook.add_partial("loglikelihood", pair, (logprob, greedy))
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Perplexity-style scoring in disjoint windows of at most ``n_ctx`` tokens, as
        lm-eval's HFLM does (``get_rolling_token_windows``, context_len=1)."""
        windows, owner = [], []
        for i, (string,) in enumerate(r.args for r in requests):
            for ctx, cont in map(
                make_disjoint_window,
                get_rolling_token_windows(
                    token_list=self.tok_encode(string, add_special_tokens=False),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                ),
            ):
                windows.append((None, ctx, cont))
                owner.append(i)
        totals = [0.0] * len(requests)
        for i, (lp, _) in zip(owner, self._loglikelihood_tokens(windows, disable_tqdm=disable_tqdm)):
            totals[i] += lp
        for req, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


def _close_held(holder: list[Any]) -> None:
    if holder[0] is not None:
        holder[0].close()
        holder[0] = None


def _common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


def _logsumexp(rows: np.ndarray) -> np.ndarray:
    m = rows.max(axis=1, keepdims=True)
    return m + np.log(np.exp(rows - m).sum(axis=1, keepdims=True))


def _where(req: Any) -> str:
    task, doc_id = getattr(req, "task_name", None), getattr(req, "doc_id", None)
    return f"task {task}, doc_id {doc_id}" if task is not None else "direct call"


def validate_model_args(model_args: dict[str, Any]) -> None:
    """Check ``--model_args`` for lrm-gguf before anything loads (see
    :mod:`lrm_backends.run.validate`): names and types against :class:`GGUFBackend`'s
    signature, then that ``pretrained`` is a complete GGUF."""
    from lrm_backends.errors import ValidationError, check_against_signature

    check_against_signature("lrm-gguf", GGUFBackend, model_args)
    pretrained = model_args.get("pretrained")
    if not pretrained:
        raise ValidationError(
            "--model_args: the lrm-gguf backend needs the model file, and no pretrained= was "
            "given. Pass --model_args pretrained=PATH.gguf."
        )
    try:
        resolve_gguf_path(str(pretrained))
    except GGUFModelError as exc:
        raise ValidationError(f"--model_args {exc}") from None
