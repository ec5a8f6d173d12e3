"""`lrm export upstream`: a self-contained lm-eval task folder, and version discipline."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrm_backends import export

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "lrm_tasks" / "samples"
TASKS = ["aime24_lrm", "bbh_temporal_sequences_lrm", "folio_lrm", "musique_lrm", "musique_ctx_lrm"]


def test_utils_imports_only_stdlib_at_top_level(tmp_path):
    target = export.export_upstream(tmp_path, "lrm")
    tree = ast.parse((target / "utils.py").read_text())
    roots = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)
    yamls = sorted(p.name for p in target.glob("*.yaml"))
    assert "aime24_lrm.yaml" in yamls and "lrm_compression.yaml" in yamls
    # The base task and the shared template it includes (copied beside it).
    base = (target / "aime24_lrm.yaml").read_text()
    assert "include: _lrm_template_yaml" in base
    base += (target / "_lrm_template_yaml").read_text()
    assert "!function utils.aime24_process_results" in base and "reasoning_tokens" not in base
    assert "exact_match" in base and "no_answer" in base
    assert (target / "resources" / "musique_paper100_ids.txt").is_file()
    readme = (target / "README.md").read_text()
    for heading in ("### Paper", "### Citation", "### Groups, Tags, and Tasks", "### Checklist", "### Changelog",
                    "### Reasoning notes"):
        assert heading in readme
    with pytest.raises(export.ExportError, match="exists; pass --overwrite"):
        export.export_upstream(tmp_path, "lrm")


def test_task_versions_move_with_the_scoring_code():
    """Fails when a prompt, config or the scoring code changed without a version bump."""
    golden = json.loads((REPO / export.HASHES_FILE).read_text())
    current = export.task_hashes()
    assert set(current) == set(golden), "tasks added or removed: run python -m lrm_backends.export --update-hashes"
    for task, now in current.items():
        before = golden[task]
        if now["sha256"] != before["sha256"]:
            assert now["version"] != before["version"], (
                f"{task}: its prompt, config or the scoring code changed but metadata.version is still "
                f"{now['version']}. Bump it, add a changelog line to task_configs/README.md, then run "
                "`python -m lrm_backends.export --update-hashes`."
            )
            pytest.fail(f"{task}: version bumped to {now['version']}; now refresh the golden hashes with "
                        "`python -m lrm_backends.export --update-hashes`.")
        assert now["version"] == before["version"], f"{task}: version changed; refresh the golden hashes"


def _fresh_venv_without_lrm_bench(root: Path) -> Path:
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(REPO / ".ci" / "constraints.txt")]
    out = subprocess.run(pip + ["lm-eval[hf]==0.4.13"], capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import lrm_tasks"], capture_output=True, text=True,
                           cwd=root, env=env)
    assert check.returncode != 0, "the fresh venv must not see lrm-bench"
    return venv


def _scores(results_dir: Path) -> dict:
    res = json.loads(sorted(results_dir.rglob("results_*.json"))[-1].read_text())["results"]
    return {t: {k: v for k, v in r.items() if k.split(",")[0] in ("exact_match", "no_answer", "f1")}
            for t, r in res.items() if t in TASKS}


@pytest.mark.slow
def test_exported_folder_runs_in_plain_lm_eval_with_the_same_scores(tmp_path, tiny_hf_dir):
    target = export.export_upstream(tmp_path / "export", "lrm")
    venv = _fresh_venv_without_lrm_bench(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRM_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", LRM_DATA_DIR=str(SAMPLES), PYTHONNOUSERSITE="1")
    common = ["--model", "hf", "--model_args", f"pretrained={tiny_hf_dir},dtype=float32", "--tasks", ",".join(TASKS),
              "--limit", "3", "--gen_kwargs", "max_gen_toks=10,do_sample=False", "--seed", "7"]
    validate = subprocess.run([str(venv / "bin" / "lm_eval"), "validate", "--tasks", ",".join(TASKS + ["lrm_compression"]),
                               "--include_path", str(target)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-3000:]
    upstream = subprocess.run([str(venv / "bin" / "lm_eval"), *common, "--include_path", str(target),
                               "--output_path", str(tmp_path / "up")], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=900)
    assert upstream.returncode == 0, upstream.stderr[-4000:]
    ours = subprocess.run([str(Path(sys.executable).parent / "lm_eval"), *common, "--output_path", str(tmp_path / "ours")],
                          capture_output=True, text=True, env={**env, "LRM_RECORDS_DIR": str(tmp_path / "rec")},
                          cwd=tmp_path, timeout=900)
    assert ours.returncode == 0, ours.stderr[-4000:]
    assert _scores(tmp_path / "up") == _scores(tmp_path / "ours")
    assert set(_scores(tmp_path / "up")) == set(TASKS)


def test_installed_package_needs_no_tests_folder():
    """The golden hashes ship inside the package, and bench scripts import only the
    installed packages (no sys.path edits to reach tests/ or the checkout)."""
    assert export.HASHES_FILE.is_file()
    assert Path(export.__file__).resolve().parent in export.HASHES_FILE.resolve().parents
    for script in sorted((REPO / "bench").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        assert "sys.path.insert" not in text and "sys.path.append" not in text, script.name
        assert "from test_" not in text and "from helpers" not in text, script.name
