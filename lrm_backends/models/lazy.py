"""Backend classes built on first access, so that their modules import in milliseconds.

A backend that subclasses a heavy base (lm-eval's ``hf`` model imports torch and
transformers, its ``vllm`` model imports vllm) keeps light things such as
``validate_model_args`` at module level and builds the class itself only when
something asks for it (PEP 562 module ``__getattr__``)::

    _lazy = LazyClass(__name__, "PrunedLM", _build)
    __getattr__ = _lazy.module_getattr
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyClass:
    """The class ``name`` of module ``module``, made by ``build()`` once, on first access."""

    def __init__(self, module: str, name: str, build: Callable[[], type]) -> None:
        self.module, self.name, self._build = module, name, build
        self._lock = threading.Lock()
        self._class: type | None = None

    def get(self) -> type:
        with self._lock:
            if self._class is None:
                cls = self._build()
                cls.__module__, cls.__qualname__ = self.module, self.name  # pickles and reprs as a module attribute
                self._class = cls
            return self._class

    def forget(self) -> None:
        """Build again on next access (tests that swap the heavy base)."""
        with self._lock:
            self._class = None

    def module_getattr(self, attr: str) -> Any:
        if attr == self.name:
            return self.get()
        raise AttributeError(f"module {self.module!r} has no attribute {attr!r}")
