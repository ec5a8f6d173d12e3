"""Engine replicas that live for the whole run: Ray actors, chunks dealt to the free one.

``lrm-vllm`` (``data_parallel_size=N``) and ``lrm-gguf`` (``replicas=N``) start N copies
of their engine as Ray actors when the backend is built. Each actor builds its engine
exactly once (a full model load) and then serves chunks of requests until the run ends:
a free replica takes the next chunk, so long and short prompts balance out, and every
finished chunk is handed back at once (the backend reports it to the resume cache).

Why actors and not lm-eval's data parallelism: lm-eval 0.4.13 starts N fresh Ray tasks
per ``generate`` call, each loading the model, then ``ray.shutdown()`` (1,920 requests in
chunks of 128 = 15 loads of every replica), and asks for ``num_gpus`` even on a CPU-only
cluster. Why not ``ray.data.llm``: its vLLM processor owns batching and output order and
writes a dataset at the end; we need each chunk's responses the moment they exist (the
resume cache), our own per-request seeds and lrm-gguf replicas beside vLLM's.

Clusters: ``ray_address=`` (or ``$RAY_ADDRESS``) joins a running cluster, so replicas
spread over its nodes; without it a local Ray instance starts, and is shut down at the
end of the run. Resources are declared, Ray places the actors: ``num_gpus`` per replica
on GPU engines (a placement group of one GPU bundle per device when a replica spans
several), ``num_cpus`` on CPU engines.

Faults: a replica that dies (actor killed, node lost, out of memory) has its chunk dealt
again to a live replica, counted in :attr:`ReplicaPool.stats` (the results' ``lrm``
block); the run fails only when every replica is gone. An error raised by the engine
itself on a chunk is the request's: the other chunks finish and are reported, then the
error is raised to the caller (lrm-bench's per-request isolation takes it from there).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'lrm-bench[ray]'"
RAY_ADDRESS_ENV = "RAY_ADDRESS"
# Model arguments that only say how the work is spread: never part of the cache identity.
REPLICA_ARGS = ("replicas", "data_parallel_size", "ray_address", "chunk_size")
# A replica that dies takes its chunk with it; the chunk is dealt again at most this many
# times in all before the run stops (a chunk that kills every engine is not the engine's).
DEFAULT_MAX_RETRIES = 8


class ReplicaError(RuntimeError):
    """The replicas cannot go on: Ray missing, every replica dead, or retries used up."""


def join_failure(address: str, exc: BaseException) -> str:
    """One message for a cluster that could not be joined: the usual causes and fixes."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    message = (f"could not join the Ray cluster at {address} ({type(exc).__name__}: {first}). Check that "
               "`ray start --head` runs there and that this machine reaches that address.")
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() != "token":
        message += (" Clusters started by Ray 2.59 or later require a token: set RAY_AUTH_MODE=token here and for "
                    "every `ray start --address`, with the head's token (copy its ~/.ray/auth_token, or set "
                    "RAY_AUTH_TOKEN; `ray get-auth-token` on the head prints it); or start every node with "
                    "RAY_AUTH_MODE=disabled on a trusted network.")
    return message


def require_ray(what: str) -> None:
    """Fail before any model loads when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise ImportError(f"{what} runs its replicas on Ray, which is not installed: {INSTALL_HINT}")


def resolve_factory(path: str) -> Callable[..., Any]:
    """``"module:attr"`` -> the callable it names (the worker class built in a replica)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass
class ReplicaSpec:
    """What one replica is: the worker to build (``"module:Class"`` + its arguments) and
    the Ray resources it needs."""

    factory: str
    kwargs: dict[str, Any]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    gpus_per_replica: int = 0  # > 1: a placement group of that many one-GPU bundles
    env: dict[str, str] = field(default_factory=dict)  # set in the replica before building


class _Replica:
    """The Ray actor body: builds the worker once, then runs chunks on it."""

    def __init__(self, factory: str, kwargs: dict[str, Any], env: dict[str, str]) -> None:
        for key, value in env.items():
            os.environ.setdefault(key, value)
        import ray

        self.worker = resolve_factory(factory)(**kwargs)
        self.node_id = ray.get_runtime_context().get_node_id()

    def info(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "pid": os.getpid()}

    def run(self, payload: Any) -> Any:
        return self.worker.run(payload)


class ReplicaPool:
    """N replicas of one worker on Ray, alive until :meth:`close`."""

    def __init__(self, spec: ReplicaSpec, n: int, *, ray_address: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES, what: str = "replicas") -> None:
        require_ray(what)
        import ray

        if int(n) < 1:
            raise ValueError(f"{what}: {n} replicas; expected a positive integer")
        self.spec, self.n, self.what = spec, int(n), what
        self.max_retries = int(max_retries)
        self.stats: Counter[str] = Counter()
        self.chunks_by_node: Counter[str] = Counter()
        self._started_ray = False
        self._groups: list[Any] = []
        self.actors: list[Any] = []
        if not ray.is_initialized():
            address = ray_address or os.environ.get(RAY_ADDRESS_ENV) or None
            if address:
                log.info("lrm-bench: joining the Ray cluster at %s", address)
                try:
                    ray.init(address=address, log_to_driver=True)
                except (ConnectionError, RuntimeError) as exc:
                    raise ReplicaError(join_failure(address, exc)) from exc
            else:
                ray.init(include_dashboard=False, log_to_driver=True)
                self._started_ray = True
        try:
            remote = ray.remote(_Replica)
            self.actors = [self._start(remote, i) for i in range(self.n)]
            # Every replica has built its engine (one load each) before any request.
            self.info = ray.get([a.info.remote() for a in self.actors])
        except BaseException as exc:
            self.close()
            if "No module named 'lrm_backends'" in str(exc):
                raise ReplicaError(
                    f"{what}: the Ray workers cannot import lrm_backends. Every node of the cluster runs "
                    "`ray start` from a Python environment with lrm-bench installed (the same version and "
                    "extras as here, e.g. pip install 'lrm-bench[gguf,ray]')."
                ) from None
            raise
        self.stats["replica_loads"] = self.n
        self.alive = [True] * self.n
        nodes = Counter(i["node_id"] for i in self.info)
        log.info("lrm-bench: %d %s loaded on %d Ray node(s): %s", self.n, what, len(nodes),
                 ", ".join(f"{node[:12]} x{k}" for node, k in nodes.items()))

    def _start(self, remote: Any, index: int) -> Any:
        spec = self.spec
        options: dict[str, Any] = {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus,
                                   "name": None, "max_restarts": 0}
        if spec.gpus_per_replica > 1:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            # One bundle per device the replica spans; vLLM's Ray executor places its
            # workers in the group it runs in (capture_child_tasks).
            group = placement_group([{"GPU": 1, "CPU": 1}] * spec.gpus_per_replica, strategy="PACK")
            self._groups.append(group)
            options.update(num_gpus=0, num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_capture_child_tasks=True))
        return remote.options(**options).remote(spec.factory, spec.kwargs, spec.env)

    def run(self, payloads: Sequence[Any], on_done: Callable[[int, Any], None]) -> None:
        """Run every payload (one chunk each) on the replicas; ``on_done(i, result)`` as
        each finishes, in completion order. A dead replica's chunk is dealt again."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        queue: deque[int] = deque(range(len(payloads)))
        busy: dict[Any, tuple[int, int]] = {}  # ref -> (replica, chunk)
        first_error: BaseException | None = None
        while queue or busy:
            for r in range(self.n):
                if not queue:
                    break
                if self.alive[r] and all(rep != r for rep, _ in busy.values()):
                    c = queue.popleft()
                    busy[self.actors[r].run.remote(payloads[c])] = (r, c)
            if not busy:
                raise ReplicaError(f"{self.what}: every replica has died; {len(queue)} chunk(s) left undone")
            ready, _ = ray.wait(list(busy), num_returns=1)
            for ref in ready:
                r, c = busy.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:  # the engine raised on this chunk: a request error
                    if isinstance(exc, RayActorError):
                        raise
                    cause = exc.as_instanceof_cause()
                    first_error = first_error or (cause if isinstance(cause, Exception) else exc)
                    continue
                except RayActorError as exc:
                    self._lost(r, c, exc)
                    queue.appendleft(c)
                    continue
                self.stats["chunks"] += 1
                self.chunks_by_node[self.info[r]["node_id"]] += 1
                on_done(c, result)
        if first_error is not None:
            raise first_error

    def _lost(self, r: int, c: int, exc: BaseException) -> None:
        self.alive[r] = False
        self.stats["replicas_lost"] += 1
        self.stats["chunk_retries"] += 1
        left = sum(self.alive)
        log.warning("lrm-bench: replica %d (node %s) died on chunk %d (%s); the chunk goes to another "
                    "replica, %d left", r, self.info[r]["node_id"][:12], c, str(exc).splitlines()[0][:200], left)
        if self.stats["chunk_retries"] > self.max_retries:
            raise ReplicaError(f"{self.what}: {self.stats['chunk_retries']} chunks lost with their replica, more "
                               f"than max_retries={self.max_retries}; stopping") from exc
        if left == 0:
            raise ReplicaError(f"{self.what}: every one of the {self.n} replicas has died") from exc

    def summary(self) -> dict[str, Any]:
        """For the results' ``lrm`` block."""
        return {
            "replicas": self.n,
            "replica_loads": self.stats["replica_loads"],
            "chunks": self.stats["chunks"],
            "chunk_retries": self.stats["chunk_retries"],
            "replicas_lost": self.stats["replicas_lost"],
            "chunks_by_node": dict(self.chunks_by_node),
        }

    def close(self) -> None:
        """Stop the replicas (and the local Ray instance, if this pool started it)."""
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:  # already dead
                pass
        self.actors = []
        if self._groups:
            from ray.util.placement_group import remove_placement_group

            for group in self._groups:
                remove_placement_group(group)
            self._groups = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive chunks of ``size`` (the last may be shorter)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# ---------------------------------------------------------------------- workers
# What a replica builds: ``Worker(**kwargs)`` once, then ``run(payload)`` per chunk.


class VLLMWorker:
    """One ``vllm.LLM`` per replica; a chunk is (token prompts, SamplingParams)."""

    def __init__(self, engine_args: dict[str, Any]) -> None:
        from vllm import LLM

        self.llm = LLM(**engine_args)

    def run(self, payload: tuple[list[list[int]], list[Any]]) -> list[tuple[str, int | None, str | None]]:
        from vllm import TokensPrompt

        prompts, params = payload
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts],
                                    sampling_params=params, use_tqdm=False)
        out = []
        for o in outputs:
            c = o.outputs[0]
            ids = getattr(c, "token_ids", None)
            out.append((c.text, len(ids) if ids is not None else None, getattr(c, "finish_reason", None)))
        return out


class GGUFWorker:
    """One lrm-gguf model per replica; a chunk is [(tokens, gen kwargs, budget, seed)]."""

    def __init__(self, backend: str, backend_args: dict[str, Any]) -> None:
        self.backend = resolve_factory(backend)(**backend_args)  # the driver's own class

    def run(self, payload: list[tuple[list[int], dict, int, int]]) -> list[Any]:
        return [self.backend._generate(tokens, kwargs, budget, seed=seed) for tokens, kwargs, budget, seed in payload]


# ------------------------------------------------------------------ vLLM replicas


class VLLMConfigOnly:
    """Stands in for ``vllm.LLM`` in the driver while the replicas hold the engines:
    lm-eval's ``VLLM`` reads ``llm_engine.model_config`` (context length, chat template);
    the engine arguments it built are kept for the replicas."""

    def __init__(self, **engine_args: Any) -> None:
        from types import SimpleNamespace

        self.engine_args = engine_args
        self.llm_engine = SimpleNamespace(model_config=_model_config(engine_args))

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "lrm-vllm with data_parallel_size > 1 runs generate_until requests on its replicas; "
            "loglikelihood tasks need data_parallel_size=1."
        )


def _model_config(engine_args: dict[str, Any]) -> Any:
    """vLLM's model config without an engine (as lm-eval does for data parallelism)."""
    try:
        from vllm.engine.arg_utils import EngineArgs
    except ImportError:  # a stand-in vllm without EngineArgs: the HF config's length
        from types import SimpleNamespace

        from transformers import AutoConfig

        length = engine_args.get("max_model_len")
        if not length:
            config = AutoConfig.from_pretrained(engine_args["model"])
            length = getattr(config, "max_position_embeddings", None) or 2048
        return SimpleNamespace(max_model_len=int(length))
    return EngineArgs(**engine_args).create_model_config()


def vllm_on_cpu() -> bool:
    """Is the installed vLLM its CPU build (engines need CPUs, not GPUs, from Ray)?"""
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:
        import importlib.metadata as md

        try:
            return "cpu" in md.version("vllm")
        except md.PackageNotFoundError:
            return False


def vllm_replica_spec(engine_args: dict[str, Any]) -> ReplicaSpec:
    """One vLLM replica's worker and resources: TP x PP devices each."""
    devices = int(engine_args.get("tensor_parallel_size") or 1) * int(engine_args.get("pipeline_parallel_size") or 1)
    factory = f"{__name__}:VLLMWorker"
    if vllm_on_cpu():
        # vLLM's CPU build binds its OpenMP threads to cores it picks itself ("auto"), the
        # same cores for every replica on a node: let Ray's CPU share decide instead.
        env = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": str(devices)}
        return ReplicaSpec(factory, {"engine_args": engine_args}, num_cpus=devices, env=env)
    if devices > 1:
        # Several GPUs per replica: vLLM's Ray executor runs its workers in the replica's
        # placement group.
        args = {**engine_args, "distributed_executor_backend": "ray"}
        return ReplicaSpec(factory, {"engine_args": args}, num_cpus=1, gpus_per_replica=devices)
    return ReplicaSpec(factory, {"engine_args": engine_args}, num_cpus=1, num_gpus=1)


def gguf_replica_spec(backend: str, backend_args: dict[str, Any]) -> ReplicaSpec:
    """One lrm-gguf replica: its own llama.cpp with the same n_threads / n_gpu_layers."""
    gpus = 1 if int(backend_args.get("n_gpu_layers") or 0) != 0 else 0
    cpus = int(backend_args.get("n_threads") or 1)
    return ReplicaSpec(f"{__name__}:GGUFWorker", {"backend": backend, "backend_args": backend_args},
                       num_cpus=cpus, num_gpus=gpus)
