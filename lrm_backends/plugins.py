"""The plugin manager: built-in plugins plus ``lrm_bench`` entry points.

Nothing is loaded at import time; :func:`get_plugin_manager` loads once on first use
(:func:`reset` forgets it, for tests).  Third-party plugins are distributions that
declare an entry point in the ``lrm_bench`` group::

    [project.entry-points.lrm_bench]
    my_backends = "my_package.lrm_plugin"      # a module with @hookimpl functions

A third-party plugin that fails to import, to register or to run its hook is skipped
with a :class:`PluginWarning` naming it; ``LRM_BLOCK_PLUGINS=name1,name2`` skips plugins
by entry-point name (or distribution name, or ``lrm_backends.builtin`` for ours).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from lrm_backends import hookspecs

ENTRY_POINT_GROUP = "lrm_bench"
BLOCK_ENV_VAR = "LRM_BLOCK_PLUGINS"

# Our own backends register through the same hook as anyone else's.
DEFAULT_PLUGINS: tuple[str, ...] = ("lrm_backends.builtin", "lrm_backends.run.recording")

# A --model name: what lm-eval's "--model NAME" and a shell accept without quoting.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PluginWarning(UserWarning):
    """A plugin was skipped (broken, conflicting or blocked): evaluation goes on."""


class UnknownBackendError(LookupError):
    """``--model NAME`` names no registered backend; the message lists what exists."""

    def __str__(self) -> str:  # LookupError's str() would quote and escape the message
        return str(self.args[0]) if self.args else ""


@dataclass
class PluginInfo:
    """What ``lrm plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # "loaded" | "blocked" | "failed"
    error: str | None = None
    backends: dict[str, str] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)  # the hooks it implements


# Plugin name -> what we know about it; filled by get_plugin_manager / backend_targets.
_INFO: dict[str, PluginInfo] = {}


def blocked_plugin_names() -> set[str]:
    """Names listed in ``$LRM_BLOCK_PLUGINS`` (comma separated, blanks ignored)."""
    return {n.strip() for n in os.environ.get(BLOCK_ENV_VAR, "").split(",") if n.strip()}


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=3)


def _own_version() -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version("lrm-bench")
    except importlib.metadata.PackageNotFoundError:
        return None  # a source checkout that was never pip-installed


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first call."""
    import importlib.metadata

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_plugin_names()
    for name in blocked:
        pm.set_blocked(name)
    _INFO.clear()

    for name in DEFAULT_PLUGINS:
        _INFO[name] = PluginInfo(name, "lrm-bench", _own_version())
        if pm.is_blocked(name):
            _INFO[name].status = "blocked"
            continue
        # Our own plugins are part of this package: if one is broken, fail loudly.
        pm.register(importlib.import_module(name), name=name)

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        info = PluginInfo(ep.name, dist_name, dist.version if dist is not None else None)
        if pm.has_plugin(ep.name) or ep.name in _INFO:
            continue  # the same distribution seen twice on sys.path: first one wins
        _INFO[ep.name] = info
        if ep.name in blocked or (dist_name is not None and dist_name in blocked):
            info.status = "blocked"
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # any failure of third-party code
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            _warn(
                f"lrm-bench plugin {ep.name!r} ({ep.value}"
                f"{f', from {dist_name} {info.version}' if dist_name else ''}) failed to "
                f"load and is skipped: {info.error}. Fix or uninstall it, or set "
                f"{BLOCK_ENV_VAR}={ep.name} to skip it silently."
            )
    return pm


def reset() -> None:
    """Forget the loaded plugins (tests; after changing ``$LRM_BLOCK_PLUGINS``)."""
    get_plugin_manager.cache_clear()
    _INFO.clear()


def backend_targets() -> dict[str, str]:
    """Map each registered backend name to its lazy ``"module:Class"`` target.

    Every ``register_backends`` implementation is called in registration order
    (built-ins first).  The first registration of a name wins; a later plugin that
    registers the same name, an invalid name or target, or raises is skipped with a
    :class:`PluginWarning` naming it.
    """
    pm = get_plugin_manager()
    targets: dict[str, str] = {}
    owner: dict[str, str] = {}
    for impl in pm.hook.register_backends.get_hookimpls():
        plugin = impl.plugin_name
        info = _INFO.setdefault(plugin, PluginInfo(plugin))  # registered by hand (tests)
        info.backends = {}

        def register(name: str, target: str, _plugin: str = plugin) -> None:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(
                    f"backend name {name!r} is not a valid --model name: use letters, "
                    "digits, '.', '_' and '-', starting with a letter or digit"
                )
            if not isinstance(target, str) or not _TARGET_RE.match(target):
                raise ValueError(
                    f"backend {name!r} has target {target!r}; expected a lazy "
                    "'package.module:ClassName' string"
                )
            if name in targets and targets[name] != target:
                _warn(
                    f"lrm-bench plugin {_plugin!r} registers backend {name!r} as "
                    f"{target!r}, but plugin {owner[name]!r} registered it first as "
                    f"{targets[name]!r}; keeping the first. Block one of them with "
                    f"{BLOCK_ENV_VAR}=<plugin>."
                )
                return
            targets[name], owner[name] = target, _plugin
            _INFO[_plugin].backends[name] = target

        kwargs: dict[str, Any] = {"register": register}
        try:
            impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as exc:
            if plugin in DEFAULT_PLUGINS:
                raise
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            for name in info.backends:  # all or nothing for a plugin that broke midway
                del targets[name], owner[name]
            info.backends = {}
            _warn(
                f"lrm-bench plugin {plugin!r} failed in register_backends and is "
                f"skipped: {info.error}. Set {BLOCK_ENV_VAR}={plugin} to skip it silently."
            )
    return targets


def plugin_infos() -> list[PluginInfo]:
    """Every plugin seen (loaded, blocked or failed) with its backends, built-ins first."""
    backend_targets()  # fills PluginInfo.backends
    pm = get_plugin_manager()
    for name, plugin in pm.list_name_plugin():
        if name is None or plugin is None:
            continue
        info = _INFO.setdefault(name, PluginInfo(name))  # registered by hand (tests)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return list(_INFO.values())


def resolve_backend(name: str) -> str:
    """The lazy target of backend ``name``, or :class:`UnknownBackendError` saying
    which registered names are close and which exist."""
    targets = backend_targets()
    if name in targets:
        return targets[name]
    raise UnknownBackendError(unknown_backend_message(name, targets))


def unknown_backend_message(name: str, available: Any, *, kind: str = "backend") -> str:
    """'unknown backend' text with "did you mean" suggestions from ``available``
    (``kind="model"`` for lm-eval's wording).

    >>> print(unknown_backend_message("lrm-guff", ["lrm-gguf", "lrm-replay"]))
    unknown backend 'lrm-guff'. Did you mean 'lrm-gguf'? Available backends: lrm-gguf, lrm-replay. Plugins add more (see `lrm plugins`).
    """
    from lrm_backends.errors import did_you_mean

    names = sorted(available)
    hint = did_you_mean(name, names, n=3, ignore_case=True, substrings=True)
    return (
        f"unknown {kind} {name!r}.{hint} Available {kind}s: "
        f"{', '.join(names) or '(none)'}. Plugins add more (see `lrm plugins`)."
    )


def load_backend(name: str) -> type:
    """Import and return the class registered as backend ``name``."""
    module, _, attr = resolve_backend(name).partition(":")
    return getattr(importlib.import_module(module), attr)


def register_lm_eval_models(module: Any = None) -> None:
    """Add every backend of our registry to lm-eval's model registry (lazy targets).

    Runs after ``lm_eval.models`` has registered lm-eval's own lazy models (the import
    hook calls it right after that module loads): registering into an empty registry
    would stop ``get_model`` from ever importing ``lm_eval.models``, and ``--model vllm``
    would then fail. Names lm-eval already has are left to lm-eval.
    """
    from lm_eval.api.registry import model_registry

    for name, target in backend_targets().items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def call_recorders(hook_name: str, failed: set[str], **kwargs: Any) -> None:
    """Call every implementation of the record hook ``hook_name`` (in pluggy's order)
    with the keyword arguments it names.

    An implementation that raises is reported once, as a :class:`PluginWarning` naming
    its plugin, added to ``failed`` and skipped for the rest of the run (``failed`` is
    the run's own set), so a broken recorder never costs the evaluation.
    """
    caller = getattr(get_plugin_manager().hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        if impl.plugin_name in failed:
            continue
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception as exc:
            failed.add(impl.plugin_name)
            warnings.warn(
                f"lrm-bench: plugin {impl.plugin_name!r} raised in {hook_name} "
                f"({type(exc).__name__}: {exc}); it gets no more records in this run",
                PluginWarning,
                stacklevel=2,
            )
