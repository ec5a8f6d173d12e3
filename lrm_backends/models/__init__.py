"""lrm-bench's backends (lm-eval models): GGUF, vLLM, pruned, replay.

Each is registered by name in :mod:`lrm_backends.builtin` as a lazy ``"module:Class"``
target. Importing this package imports nothing.
"""
