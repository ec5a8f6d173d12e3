"""One small evaluation with a response cache, optionally killed (SIGKILL) at a chosen point.

Run by tests/test_cache_resume.py in a subprocess::

    python resume_driver.py CONFIG.json

CONFIG: ``backend`` ("hf" or "lrm-vllm"), ``model`` (a local HF folder), ``cache``,
``tasks``, ``limit``, ``repeats``, ``max_gen_toks``, ``data_parallel_size`` (lrm-vllm;
default 1), ``results`` (where the results go as
JSON), ``seeds_log`` (one line per sample drawn), and ``kill``: null or ``[kind, n]``:

- ``after_store``: right after the n-th response of this process is stored;
- ``torn_write``: halfway through writing the n-th response (a partial last line);
- ``in_generate``: when the backend's n-th generation call has generated, before it returns;
- ``in_scoring``: at the n-th per-response record (generation is over).

It uses lm-eval's Python API (``simple_evaluate`` through lrm-bench's hook), with the
cache given as ``--metadata``'s ``lrm_cache``, the plain-lm_eval mechanism.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _countdown(n: int):
    state = {"left": n}

    def tick() -> bool:
        state["left"] -= 1
        return state["left"] == 0

    return tick


def install_kill(kind: str, n: int, backend: str) -> None:
    from lrm_backends.run import cache, evaluation

    tick = _countdown(n)
    if kind in ("after_store", "torn_write"):
        put = cache.ResponseCache.put

        def killing_put(self, entry):
            if kind == "torn_write" and tick():
                line = cache._dumps(entry) + "\n"
                self._fh.write(line[: len(line) // 2])
                self._fh.flush()
                _die()
            put(self, entry)
            if kind == "after_store" and tick():
                _die()

        cache.ResponseCache.put = killing_put
    elif kind == "in_generate":
        if backend == "hf":
            from lm_eval.models.huggingface import HFLM as cls
        else:
            from lm_eval.models.vllm_causallms import VLLM as cls
        generate = cls._model_generate

        def killing_generate(self, *args, **kwargs):
            out = generate(self, *args, **kwargs)
            if tick():
                _die()
            return out

        cls._model_generate = killing_generate
    elif kind == "in_scoring":
        sink = evaluation.Session.sink

        def killing_sink(self, record):
            if tick():
                _die()
            sink(self, record)

        evaluation.Session.sink = killing_sink
    else:
        raise SystemExit(f"unknown kill point {kind!r}")


def log_seeds(path: str) -> None:
    """Note every sample a backend draws (its per-request seed), to catch a repeat."""
    from lrm_backends.run import cache

    def note(seed: int) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{seed}\n")

    seed_global = cache._seed_global_generators

    def noting_seed_global(seed: int) -> None:
        note(seed)
        seed_global(seed)

    cache._seed_global_generators = noting_seed_global
    try:
        import vllm  # the fake one (tests/helpers/fake_vllm) on this path

        complete = vllm.LLM._complete

        def noting_complete(self, tokens, sp):
            if sp.seed is not None:
                note(sp.seed)
            return complete(self, tokens, sp)

        vllm.LLM._complete = noting_complete
    except ImportError:
        pass


def main(config_path: str) -> None:
    cfg = json.loads(open(config_path, encoding="utf-8").read())
    from lrm_backends.hookspecs import hookimpl
    from lrm_backends.run.lmeval_glue import activate
    from lrm_backends.plugins import get_plugin_manager

    class VLLMPlugin:  # until lrm-vllm is one of the built-ins
        @hookimpl
        def register_backends(self, register):
            register("lrm-vllm", "lrm_backends.models.vllm:VLLMBackend")

    get_plugin_manager().register(VLLMPlugin(), name="test-lrm-vllm")
    activate()
    if cfg.get("seeds_log"):
        log_seeds(cfg["seeds_log"])
    if cfg.get("kill"):
        install_kill(cfg["kill"][0], int(cfg["kill"][1]), cfg["backend"])

    import lm_eval
    from lm_eval.tasks import TaskManager
    from lrm_tasks import task_config_dir

    meta = {"repeats": cfg["repeats"], "lrm_cache": cfg["cache"]}
    if cfg["backend"] == "hf":
        model_args = f"pretrained={cfg['model']},dtype=float32"
    else:
        model_args = f"pretrained={cfg['model']},chunk_size={cfg.get('chunk_size', 2)},max_model_len=512"
        if cfg.get("data_parallel_size", 1) > 1:  # replicas: Ray actors (a local Ray this process starts)
            model_args += f",data_parallel_size={cfg['data_parallel_size']}"
    results = lm_eval.simple_evaluate(
        model=cfg["backend"], model_args=model_args, tasks=cfg["tasks"], limit=cfg["limit"],
        gen_kwargs=f"max_gen_toks={cfg['max_gen_toks']}", device="cpu",
        task_manager=TaskManager(include_defaults=False, include_path=str(task_config_dir()), metadata=meta),
        metadata=meta,
    )
    with open(cfg["results"], "w", encoding="utf-8") as fh:
        json.dump({"results": results["results"], "lrm": results["lrm"]}, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
