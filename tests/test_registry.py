"""The plugin registry: built-ins, third-party entry points, blocking, broken plugins."""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import subprocess
import sys
import types
import warnings

import pytest

from lrm_backends import plugins
from lrm_backends.builtin import BUILTIN_BACKENDS
from lrm_backends.hookspecs import hookimpl


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Every test starts from an unloaded registry and leaves none behind."""
    monkeypatch.delenv(plugins.BLOCK_ENV_VAR, raising=False)
    plugins.reset()
    yield
    plugins.reset()


def _fake_entry_points(monkeypatch, modules: dict[str, types.ModuleType | Exception]):
    """Make ``importlib.metadata`` report one ``lrm_bench`` entry point per module;
    an exception instead of a module makes that entry point fail to import."""
    eps = []
    for name, module in modules.items():
        mod_name = f"fake_lrm_plugin_{name}"
        # None in sys.modules makes the import, hence EntryPoint.load(), fail.
        monkeypatch.setitem(sys.modules, mod_name, None if isinstance(module, Exception) else module)
        eps.append(importlib.metadata.EntryPoint(name, mod_name, plugins.ENTRY_POINT_GROUP))
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == plugins.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints(eps)
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def _plugin_module(name: str, backends: dict[str, str], *, raises: Exception | None = None):
    mod = types.ModuleType(name)

    @hookimpl
    def register_backends(register):
        for backend, target in backends.items():
            register(backend, target)
        if raises is not None:
            raise raises

    mod.register_backends = register_backends
    return mod


def test_builtins_register_through_the_hook():
    targets = plugins.backend_targets()
    for name, target in BUILTIN_BACKENDS.items():
        assert targets[name] == target
    assert {"lrm-gguf", "lrm-replay"} <= set(targets)


def test_builtin_targets_are_lm_subclasses():
    import importlib.util

    from lm_eval.api.model import LM

    for name in BUILTIN_BACKENDS:
        if name == "lrm-vllm" and importlib.util.find_spec("vllm") is None:
            # Without its optional extra, the backend says how to get it, by name.
            with pytest.raises(ImportError, match=r"pip install 'lrm-bench\[vllm\]'"):
                plugins.load_backend(name)
            continue
        assert issubclass(plugins.load_backend(name), LM)


def test_targets_are_lazy_no_heavy_imports():
    code = (
        "import sys, lrm_backends.plugins as p\n"
        "p.backend_targets(); p.load_backend('lrm-gguf'); p.load_backend('lrm-replay')\n"
        "heavy = [m for m in ('llama_cpp', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_third_party_entry_point_plugin(monkeypatch):
    _fake_entry_points(monkeypatch, {"acme": _plugin_module("acme", {"acme-lm": "acme.models:AcmeLM"})})
    targets = plugins.backend_targets()
    assert targets["acme-lm"] == "acme.models:AcmeLM"
    assert targets["lrm-gguf"] == BUILTIN_BACKENDS["lrm-gguf"]
    info = {i.name: i for i in plugins.plugin_infos()}
    assert info["acme"].status == "loaded"
    assert info["acme"].backends == {"acme-lm": "acme.models:AcmeLM"}


def test_plugin_object_registered_in_fixture():
    pm = plugins.get_plugin_manager()

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("obj-lm", "somewhere.models:ObjLM")

    plugin = Plugin()
    pm.register(plugin, name="obj-plugin")
    try:
        assert plugins.backend_targets()["obj-lm"] == "somewhere.models:ObjLM"
    finally:
        pm.unregister(plugin)
    assert "obj-lm" not in plugins.backend_targets()


def test_broken_plugin_import_warns_and_is_skipped(monkeypatch):
    _fake_entry_points(
        monkeypatch,
        {"broken": ImportError(), "ok": _plugin_module("ok", {"ok-lm": "ok.m:OkLM"})},
    )
    with pytest.warns(plugins.PluginWarning, match=r"plugin 'broken'.*failed to load"):
        targets = plugins.backend_targets()
    assert "ok-lm" in targets and "lrm-gguf" in targets
    info = {i.name: i for i in plugins.plugin_infos()}
    assert info["broken"].status == "failed"
    assert info["broken"].error.startswith("ModuleNotFoundError")


def test_plugin_raising_in_hook_warns_and_its_backends_are_dropped(monkeypatch):
    bad = _plugin_module("bad", {"half-lm": "bad.m:HalfLM"}, raises=RuntimeError("boom"))
    _fake_entry_points(monkeypatch, {"bad": bad})
    with pytest.warns(plugins.PluginWarning, match=r"plugin 'bad' failed in register_backends.*boom"):
        targets = plugins.backend_targets()
    assert "half-lm" not in targets
    assert "lrm-gguf" in targets


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("lrm-gguf", "evil.m:Shadow", "registered it first"),
        ("bad name", "x.y:Z", "not a valid --model name"),
        ("fine-name", "not-a-target", "expected a lazy"),
    ],
)
def test_conflicting_or_invalid_registrations_warn(monkeypatch, name, target, message):
    _fake_entry_points(monkeypatch, {"odd": _plugin_module("odd", {name: target})})
    with pytest.warns(plugins.PluginWarning, match=message):
        targets = plugins.backend_targets()
    assert targets["lrm-gguf"] == BUILTIN_BACKENDS["lrm-gguf"]
    assert target not in targets.values()


def test_block_env_var_skips_plugin_without_loading_it(monkeypatch):
    loaded = []

    class Tracking(types.ModuleType):
        def __getattr__(self, attr):
            loaded.append(attr)
            raise AttributeError(attr)

    _fake_entry_points(monkeypatch, {"acme": _plugin_module("acme", {"acme-lm": "a.b:C"}), "spy": Tracking("spy")})
    monkeypatch.setenv(plugins.BLOCK_ENV_VAR, " acme , spy")
    plugins.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # blocked plugins make no noise
        targets = plugins.backend_targets()
    assert "acme-lm" not in targets and "lrm-gguf" in targets
    assert not loaded
    info = {i.name: i for i in plugins.plugin_infos()}
    assert info["acme"].status == info["spy"].status == "blocked"


def test_block_env_var_can_block_builtins(monkeypatch):
    monkeypatch.setenv(plugins.BLOCK_ENV_VAR, "lrm_backends.builtin")
    plugins.reset()
    assert "lrm-gguf" not in plugins.backend_targets()


def test_unknown_backend_did_you_mean():
    with pytest.raises(plugins.UnknownBackendError) as err:
        plugins.resolve_backend("lrm-guff")
    message = str(err.value)
    assert "Did you mean 'lrm-gguf'?" in message
    assert "Available backends: lrm-gguf, lrm-pruned, lrm-replay, lrm-vllm." in message


def test_unknown_backend_without_close_match_lists_available():
    message = plugins.unknown_backend_message("zzz", ["lrm-gguf", "lrm-replay"])
    assert "Did you mean" not in message and "Available backends: lrm-gguf, lrm-replay" in message
    assert plugins.unknown_backend_message("hf-autoo", ["hf", "hf-auto"], kind="model").startswith(
        "unknown model 'hf-autoo'. Did you mean 'hf-auto'?"
    )


def test_lm_eval_model_registry_sees_our_backends():
    from lm_eval.api.registry import get_model

    from lrm_backends.models.gguf import GGUFBackend
    from lrm_backends.run.lmeval_glue import activate
    from lrm_backends.models.replay import ReplayBackend

    activate()
    assert get_model("lrm-gguf") is GGUFBackend
    assert get_model("lrm-replay") is ReplayBackend


def test_lrm_plugins_command_table_and_json(monkeypatch):
    from lrm_backends.cli import plugins as commands_plugins

    _fake_entry_points(monkeypatch, {"acme": _plugin_module("acme", {"acme-lm": "a.b:C"})})
    parser = argparse.ArgumentParser()
    commands_plugins.add_parser(parser.add_subparsers())
    out = io.StringIO()
    args = parser.parse_args(["plugins"])
    assert args.func(args, out) == 0
    table = out.getvalue()
    assert "lrm_backends.builtin" in table and "lrm-gguf, lrm-replay" in table
    assert "acme" in table and "acme-lm" in table and plugins.BLOCK_ENV_VAR in table
    out = io.StringIO()
    args = parser.parse_args(["plugins", "--json"])
    args.func(args, out)
    rows = {r["name"]: r for r in json.loads(out.getvalue())}
    assert rows["acme"]["backends"] == {"acme-lm": "a.b:C"}
    assert rows["lrm_backends.builtin"]["distribution"] == "lrm-bench"
