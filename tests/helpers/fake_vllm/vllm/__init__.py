"""A stand-in for vllm with ``LLM.generate``'s interface: no GPU, deterministic text.

For tests only: put ``tests/helpers/fake_vllm`` on ``sys.path`` (or ``PYTHONPATH``) and
``import lm_eval.models.vllm_causallms`` works, with this package's dist-info saying
vllm 0.10.0. Only what lm-eval 0.4.13's vllm model touches is here.

Responses: words of "reasoning", then (unless the token budget runs out first)
``</think>`` and ``The answer is \\boxed{N}.``, one token per word. They are drawn from a
``random.Random`` seeded by the request's ``SamplingParams.seed`` and prompt when it has
a seed, by the prompt alone when greedy (temperature 0), and otherwise from the engine's
own stream (``LLM(seed=...)``), so that, as with vllm, an unseeded sample depends on
what was generated before it.

Test hooks: ``LLM.fail_when(prompt_token_ids, params) -> bool`` makes ``generate`` raise
for a call holding such a prompt; ``$FAKE_VLLM_LOG`` names a file that gets one JSON line
per generated response; ``LLM.calls`` counts ``generate`` calls, ``LLM.generated``
responses. For subprocess runs: ``$FAKE_VLLM_INIT_LOG`` names a file that gets one line
per ``LLM`` construction; ``$FAKE_VLLM_FAIL_INIT`` makes the constructor raise with that
message (an engine that cannot start); ``$FAKE_VLLM_FAIL_TOKENS`` (a JSON list of token
ids) makes ``generate`` raise for a call holding a prompt with that run of tokens;
``$FAKE_VLLM_LOADS`` one line (the pid) per construction, ``$FAKE_VLLM_DELAY`` seconds of
sleep per ``generate`` call (time to kill a replica mid-run).

"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from typing import Any, Callable

__version__ = "0.10.0"

_WORDS = ("so", "let", "me", "check", "the", "sum", "wait", "then", "hence", "thus", "maybe", "no")
_ANSWERS = ("25", "33", "204", "73", "113", "7")


class SamplingParams:
    def __init__(self, n: int = 1, temperature: float = 1.0, top_p: float = 1.0, top_k: int = -1,
                 max_tokens: int | None = 16, stop: list[str] | str | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        self.n, self.temperature, self.top_p, self.top_k = n, float(temperature), top_p, top_k
        self.max_tokens = 16 if max_tokens is None else int(max_tokens)
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])
        self.seed = seed
        self.extra = kwargs


class TokensPrompt(dict):
    """vllm's TokensPrompt is a TypedDict: ``TokensPrompt(prompt_token_ids=[...])``."""


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    cumulative_logprob: float | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    prompt_logprobs: Any = None
    finished: bool = True


@dataclass
class _ModelConfig:
    max_model_len: int


@dataclass
class _Engine:
    model_config: _ModelConfig


class LLM:
    calls = 0  # generate() calls, all engines
    generated = 0  # responses, all engines
    fail_when: Callable[[list[int], SamplingParams], bool] | None = None

    def __init__(self, model: str = "fake", seed: int = 0, max_model_len: int | None = None, **kwargs: Any) -> None:
        init_log = os.environ.get("FAKE_VLLM_INIT_LOG")
        if init_log:
            with open(init_log, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
        if os.environ.get("FAKE_VLLM_FAIL_INIT"):
            raise RuntimeError(os.environ["FAKE_VLLM_FAIL_INIT"])
        self.model, self.seed, self.max_model_len, self.kwargs = model, int(seed or 0), max_model_len, kwargs
        self.llm_engine = _Engine(_ModelConfig(int(max_model_len or 2048)))
        self._stream = random.Random(self.seed)
        loads = os.environ.get("FAKE_VLLM_LOADS")
        if loads:
            with open(loads, "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")

    def generate(self, prompts: list[Any], sampling_params: Any = None, use_tqdm: bool = True,
                 lora_request: Any = None) -> list[RequestOutput]:
        type(self).calls += 1
        if os.environ.get("FAKE_VLLM_DELAY"):
            import time

            time.sleep(float(os.environ["FAKE_VLLM_DELAY"]))
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params or SamplingParams()] * len(prompts)
        token_lists = [list(p["prompt_token_ids"]) if isinstance(p, dict) else list(p) for p in prompts]
        check = type(self).fail_when
        if check is not None and any(check(t, sp) for t, sp in zip(token_lists, params)):
            raise RuntimeError("fake vllm: cannot serve this prompt")
        poison = json.loads(os.environ.get("FAKE_VLLM_FAIL_TOKENS") or "[]")
        if poison and any(t[i:i + len(poison)] == poison for t in token_lists for i in range(len(t))):
            raise RuntimeError("fake vllm: cannot serve this prompt")
        outputs = []
        for i, (tokens, sp) in enumerate(zip(token_lists, params)):
            outputs.append(RequestOutput(str(i), tokens, [self._complete(tokens, sp)]))
        return outputs

    def _rng(self, tokens: list[int], sp: SamplingParams) -> random.Random:
        digest = hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16]
        if sp.seed is not None:
            return random.Random(f"{sp.seed}:{digest}")
        if sp.temperature == 0.0:
            return random.Random(digest)
        return random.Random(self._stream.getrandbits(64))

    def _complete(self, tokens: list[int], sp: SamplingParams) -> CompletionOutput:
        rng = self._rng(tokens, sp)
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 10))]
        words += ["</think>", "The", "answer", "is", f"\\boxed{{{rng.choice(_ANSWERS)}}}."]
        finish = "stop"
        if len(words) > sp.max_tokens:
            words, finish = words[: sp.max_tokens], "length"
        text = " ".join(words)
        for stop in sp.stop:
            if stop and stop in text:
                text, finish = text.split(stop)[0], "stop"
                words = text.split()
        type(self).generated += 1
        log = os.environ.get("FAKE_VLLM_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"prompt": hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16],
                                     "seed": sp.seed, "pid": os.getpid()}) + "\n")
        return CompletionOutput(0, text, list(range(len(words))), finish)
