"""Plain lm_eval sees our tasks and backends; the hook costs nothing elsewhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TASKS = [
    "aime24_lrm", "bbh_temporal_sequences_lrm", "folio_lrm", "musique_lrm", "musique_ctx_lrm",
]
PAPER_TASKS = [t.replace("_lrm", "_lrm_paper") for t in TASKS if t != "musique_ctx_lrm"]


def py(code: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_startup_imports_only_the_tiny_hook(tmp_path):
    out = py("""
        import sys
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('lrm_backends', 'lrm_tasks', 'lm_eval', 'pluggy', 'compressors')))
    """, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['lrm_backends', 'lrm_backends._autoload']"


def test_task_manager_indexes_our_tasks_and_the_switch_turns_it_off(tmp_path, offline_env):
    """Our tasks join lm-eval's defaults; ``include_defaults=False`` (a user asking for
    only their own include_path) gets none of them (issue 12 defect 7)."""
    code = """
        import json
        from lm_eval.tasks import TaskManager
        ours = %r
        print(json.dumps({
            "with_defaults": sorted(set(TaskManager().all_tasks) & set(ours)),
            "without_defaults": sorted(TaskManager(include_defaults=False).all_tasks),
        }))
    """ % (TASKS + PAPER_TASKS + ["lrm_compression", "lrm_compression_paper"],)
    out = py(code, env=offline_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["with_defaults"] == sorted(TASKS + PAPER_TASKS + ["lrm_compression", "lrm_compression_paper"])
    assert seen["without_defaults"] == []
    off = py(code, env={**offline_env, "LRM_BENCH_AUTOLOAD": "0"}, cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout.strip().splitlines()[-1]) == {"with_defaults": [], "without_defaults": []}


def test_include_defaults_false_with_a_custom_path_gets_only_the_users_tasks(tmp_path, offline_env):
    """lm-eval's own test_include_defaults_false_with_custom_path, through our hook, by
    keyword and positionally (issue 12 defect 7); with defaults, ours join the user's."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "my_task.yaml").write_text(
        "task: my_own_task\ndataset_path: json\noutput_type: generate_until\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n"
    )
    out = py("""
        import json
        from lm_eval.tasks import TaskManager
        own = %r
        print(json.dumps({
            "keyword": sorted(TaskManager(include_defaults=False, include_path=own).all_tasks),
            "positional": sorted(TaskManager(None, own, False).all_tasks),
            "with_defaults": sorted(t for t in TaskManager(include_path=own).all_tasks
                                    if t in ("my_own_task", "aime24_lrm")),
        }))
    """ % str(own), env=offline_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"keyword": ["my_own_task"], "positional": ["my_own_task"],
                    "with_defaults": ["aime24_lrm", "my_own_task"]}


def test_models_register_after_lm_evals_own(tmp_path, offline_env):
    out = py("""
        from lm_eval.api.registry import get_model, model_registry
        from lrm_backends.plugins import backend_targets
        ours = backend_targets()
        get_model('dummy')  # the harness's lazy path: imports lm_eval.models, then our hook
        print(all(n in model_registry for n in ours), 'vllm' in model_registry, 'hf' in model_registry)
    """, env=offline_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


@pytest.mark.slow
def test_plain_lm_eval_ls_lists_our_tasks_and_mixes_with_builtins(tmp_path, offline_env):
    lm_eval = shutil.which("lm_eval") or str(Path(sys.executable).parent / "lm_eval")
    out = subprocess.run([lm_eval, "ls", "tasks"], capture_output=True, text=True,
                         env=offline_env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in TASKS + ["lrm_compression"]:
        assert f"|{name} " in out.stdout
    mixed = py("""
        from lm_eval.tasks import TaskManager
        print(TaskManager().match_tasks(['aime24_lrm', 'gsm8k', 'lrm_compression']))
    """, env=offline_env, cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr[-2000:]
    assert mixed.stdout.strip() == "['aime24_lrm', 'gsm8k', 'lrm_compression']"


@pytest.mark.slow
def test_installed_wheel_carries_task_configs_and_the_hook(tmp_path, offline_env):
    """A non-editable install (wheel) finds its YAMLs and installs the .pth hook."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheel_dir.glob("lrm_bench-*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr[-2000:]
    assert (target / "lrm_bench_autoload.pth").is_file()
    env = {**offline_env, "LRM_BENCH_AUTOLOAD": "1", "PYTHONNOUSERSITE": "1"}
    out = py(f"""
        import sys, site
        sys.path = [p for p in sys.path if p not in ({str(REPO)!r}, '')]  # drop the source checkout
        site.addsitedir({str(target)!r})   # processes the wheel's .pth like site-packages
        sys.path.remove({str(target)!r}); sys.path.insert(0, {str(target)!r})
        import lrm_tasks
        from lm_eval.tasks import TaskManager
        print(lrm_tasks.__file__)
        print(lrm_tasks.TASK_CONFIG_DIR)
        print(sorted(TaskManager().all_tasks))
    """, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    file_, config_dir, tasks = out.stdout.strip().splitlines()
    assert file_.startswith(str(target)) and config_dir == str(target / "lrm_tasks" / "task_configs")
    assert "'aime24_lrm'" in tasks and "'lrm_compression'" in tasks
