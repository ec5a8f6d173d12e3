"""lrm-bench's own backends, registered through the public hook like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from lrm_backends.hookspecs import hookimpl

# name -> lazy "module:Class"; the module is imported only when the backend is used.
BUILTIN_BACKENDS: dict[str, str] = {
    "lrm-gguf": "lrm_backends.models.gguf:GGUFBackend",
    "lrm-replay": "lrm_backends.models.replay:ReplayBackend",
    "lrm-vllm": "lrm_backends.models.vllm:VLLMBackend",
    "lrm-pruned": "lrm_backends.models.pruned:PrunedLM",
}


@hookimpl
def register_backends(register: Callable[[str, str], None]) -> None:
    for name, target in BUILTIN_BACKENDS.items():
        register(name, target)
