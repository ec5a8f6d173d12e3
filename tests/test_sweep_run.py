"""``lrm sweep`` end to end on the tiny offline model and the sample data (slow, no GPU):
1 base x {none, sparsegpt 0.5, magnitude 2:4} x 2 tasks, limit 2.

One sweep folder goes through a life: run here and SIGKILLed mid-way (the whole process
group, after the 9th stored response: four evaluation cells done, the fifth with one of
its two responses), rerun (only the missing cells and responses are computed), rerun
again (nothing is), then one sparsity is added and run on a local Ray started by the
sweep (exactly the three new cells run). The same spec on two Ray nodes (loopback, one
CPU each) gives the same folders and the same scores, and uses both nodes.

Calls are counted from the cells' own evidence: each attempt appends a header to the
cell's log, and lm-eval's results say how many responses were generated and how many
came from the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HELPERS = Path(__file__).resolve().parent / "helpers"
TASKS = ("musique_ctx_lrm", "bbh_temporal_sequences_lrm")
LIMIT = 2
KILL_AT = 9  # stored responses: 4 evaluation cells of 2, then 1 of the 5th
ATTEMPT = "=== attempt "
SPEC = """\
output: {out}
models:
  - {{name: tiny, pretrained: {model}, backend: hf, model_args: {{dtype: float32}}}}
compressions:
  - none
  - {{method: sparsegpt, sparsity: {sparsities}, calib: "task:musique_ctx_lrm", calib_samples: 4, calib_seqlen: 32}}
  - {{method: magnitude, pattern: "2:4"}}
tasks: [musique_ctx_lrm, bbh_temporal_sequences_lrm]
limit: {limit}
gen_kwargs: {{max_gen_toks: 8}}
"""


def write_spec(path: Path, out: Path, model: Path, sparsities: str = "0.5") -> Path:
    path.write_text(SPEC.format(out=out, model=model, sparsities=sparsities, limit=LIMIT), encoding="utf-8")
    return path


@pytest.fixture()
def env(offline_env, tmp_path):
    e = {**offline_env, "OMP_NUM_THREADS": "1", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "disabled"}
    e.pop("RAY_ADDRESS", None)
    e.pop("LRM_CACHE_DIR", None)
    return e


def sweep(spec: Path, env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["lrm", "sweep", str(spec), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, start_new_session=True)  # fmt: skip


def cells(out: Path) -> dict[str, Path]:
    return {p.name: p for p in (out / "cells").iterdir() if p.is_dir()}


def attempts(cell: Path) -> int:
    log = cell / "log.txt"
    return log.read_text(encoding="utf-8").count(ATTEMPT) if log.exists() else 0


def results(cell: Path) -> dict:
    found = list((cell / "lm_eval").rglob("results_*.json"))
    assert len(found) == 1, (cell, found)
    return json.loads(found[0].read_text(encoding="utf-8"))


def scores(out: Path) -> dict[str, dict]:
    """Each evaluation cell's lm-eval scores (without timings and paths)."""
    return {name: results(cell)["results"] for name, cell in cells(out).items() if (cell / "lm_eval").exists()}


def snapshot(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (out / "cells").rglob("*") if p.is_file()}


def evaluation_cells(out: Path) -> dict[str, Path]:
    return {n: c for n, c in cells(out).items() if (c / "cache").exists() or "_lrm." in n}


def test_local_kill_resume_rerun_and_a_new_sparsity_on_local_ray(tmp_path, tiny_hf_dir, env):
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path / "sweep.yaml", out, tiny_hf_dir)
    # 1. Killed mid-way (the sweep and its running cell, SIGKILL).
    counter = tmp_path / "stored"
    killing = {**env, "PYTHONPATH": os.pathsep.join([str(HELPERS / "sweep_kill"), env.get("PYTHONPATH", "")]),
               "LRM_TEST_KILL_COUNTER": str(counter), "LRM_TEST_KILL_AT": str(KILL_AT)}  # fmt: skip
    killed = sweep(spec, killing)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    before = cells(out)
    assert len(before) == 7, sorted(before)  # 2 compression + 5 evaluation cells started
    done_before = {n for n, c in before.items() if (c / "done.json").exists()}
    assert len(done_before) == 6  # both compressions, four evaluations
    partial = next(c for n, c in before.items() if n not in done_before)
    cached = sum(len(f.read_text().splitlines()) for f in partial.glob("cache/*/responses.jsonl"))
    assert cached == 1
    mtimes = {n: (c / "done.json").stat().st_mtime_ns for n, c in before.items() if n in done_before}

    # 2. Rerun: only the missing cells and responses.
    rerun = sweep(spec, env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "8 cells (6 done, 2 to run)" in rerun.stderr
    after = cells(out)
    assert len(after) == 8
    for name in done_before:  # not run again: one attempt, the same done marker
        assert attempts(after[name]) == 1 and (after[name] / "done.json").stat().st_mtime_ns == mtimes[name]
    lrm = results(partial)["lrm"]
    assert lrm["responses_generated"] == 1 and lrm["cache"]["responses_from_cache"] == 1
    assert attempts(partial) == 2
    new = after.keys() - before.keys()
    assert len(new) == 1 and results(after[next(iter(new))])["lrm"]["responses_generated"] == LIMIT
    report = out / "report" / "report.md"
    assert report.exists() and "tiny-sparsegpt-50" in report.read_text()
    assert {n.split(".")[0] for n in after} == {"tiny", "tiny-sparsegpt-50", "tiny-magnitude-2of4"}
    for name, cell in after.items():  # a checkpoint and its manifest per compression cell
        if not (cell / "lm_eval").exists():
            manifest = json.loads((cell / "model" / "compression.json").read_text())
            assert manifest["method"] in ("sparsegpt", "magnitude")

    # 3. Rerun again: nothing is computed.
    files = snapshot(out)
    again = sweep(spec, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "8 cells (8 done, 0 to run)" in again.stderr
    assert snapshot(out) == files
    reference = scores(out)
    assert len(reference) == 6

    # 4. One more sparsity, on a local Ray the sweep starts and stops: exactly the new cells.
    write_spec(spec, out, tiny_hf_dir, "[0.5, 0.3]")
    plan = json.loads(sweep(spec, env, "--dry-run", "--json").stdout)["cells"]
    todo = [c for c in plan if not c["done"]]
    assert len(plan) == 11 and len(todo) == 3 and all(c["compression"] == "sparsegpt-0.3" for c in todo)
    ray_tmp = tempfile.mkdtemp(prefix="lrmsw", dir="/tmp")  # Ray's unix socket paths stay short
    try:
        grown = sweep(spec, {**env, "RAY_TMPDIR": ray_tmp}, "--ray")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert "11 cells (8 done, 3 to run) in" in grown.stderr and "on Ray" in grown.stderr
    final = cells(out)
    assert final.keys() - after.keys() == {c["id"] for c in todo}
    for name, cell in after.items():
        assert attempts(cell) == attempts(final[name])  # the old cells did not run again
    assert {n: s for n, s in scores(out).items() if n in reference} == reference
    assert "tiny-sparsegpt-30" in report.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ray_nodes_same_folders_and_scores_as_local(tmp_path, tiny_hf_dir, env):
    """A head and a worker (`ray start`, loopback, 1 CPU each); the sweep joins with
    --ray-address. Compared with the same spec run here, one cell after another."""
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    local_spec = write_spec(tmp_path / "local.yaml", local_out, tiny_hf_dir)
    ray_spec = write_spec(tmp_path / "ray.yaml", ray_out, tiny_hf_dir)
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="lrmsw", dir="/tmp")
    common = ["--num-cpus=1", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    head = [*ray_cli, "start", "--head", f"--port={port}", f"--temp-dir={ray_tmp}", "--include-dashboard=false",
            *common]  # fmt: skip
    worker = [*ray_cli, "start", f"--address=127.0.0.1:{port}", *common]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen(head, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        time.sleep(8)
        procs.append(subprocess.Popen(worker, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        time.sleep(6)
        on_ray = sweep(ray_spec, env, "--ray-address", f"127.0.0.1:{port}")
    finally:
        for proc in reversed(procs):  # exactly what this test started: its process groups
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "on Ray" in on_ray.stderr and "2 CPUs" in on_ray.stderr
    nodes = {json.loads((c / "done.json").read_text())["node"] for c in cells(ray_out).values()}
    assert len(nodes) == 2, nodes  # cells ran on both nodes

    here = sweep(local_spec, env)
    assert here.returncode == 0, here.stderr[-3000:]
    assert cells(local_out).keys() == cells(ray_out).keys() and len(cells(local_out)) == 8
    assert scores(local_out) == scores(ray_out) and len(scores(local_out)) == 6
    assert (ray_out / "report" / "report.md").exists() and (local_out / "report" / "report.md").exists()


def test_a_failed_cell_is_reported_and_the_others_go_on(tmp_path, tiny_hf_dir, env):
    """A model whose weights file is broken: its compression and evaluation cells fail
    (log path printed), the evaluation of its pruned variant is skipped, the good model's
    cell finishes; the exit status is the number of cells that did not finish."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_hf_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    spec = tmp_path / "fail.yaml"
    spec.write_text(
        f"output: {tmp_path / 'out'}\nmodels:\n  - {{name: tiny, pretrained: {tiny_hf_dir}, model_args: {{dtype: float32}}}}\n"
        f"  - {{name: broken, pretrained: {broken}, model_args: {{dtype: float32}}}}\n"
        "compressions: [none, {method: magnitude, sparsity: 0.5}]\nexclude: [{model: tiny, compression: 'magnitude-*'}]\n"
        "tasks: [musique_ctx_lrm]\nlimit: 1\ngen_kwargs: {max_gen_toks: 4}\n", encoding="utf-8",
    )  # fmt: skip
    run = sweep(spec, env)
    assert run.returncode == 3, run.stderr[-3000:]
    assert "failed: compress broken magnitude-0.5 (exit status" in run.stderr
    assert "failed: evaluate broken none musique_ctx_lrm (exit status" in run.stderr
    assert "skipped: evaluate broken magnitude-0.5 musique_ctx_lrm" in run.stderr
    assert str(tmp_path / "out" / "cells") in run.stderr and "log.txt" in run.stderr
    done = [c for c in cells(tmp_path / "out").values() if (c / "done.json").exists()]
    assert len(done) == 1 and done[0].name.startswith("tiny.")
    assert (tmp_path / "out" / "report" / "report.md").exists()


@pytest.mark.parametrize("max_parallel", [1, 2])
def test_local_runner_order_markers_and_dependencies(tmp_path, max_parallel):
    """The runner on cells that are quick commands (`lrm plugins`; one bad command): done
    markers, a dependency that fails skips its dependants, --max-parallel runs them too."""
    from lrm_backends.sweep.plan import Cell, Plan
    from lrm_backends.sweep.runner import exit_status, run_local
    from lrm_backends.sweep.spec import Resources, SweepSpec

    def cell(cid, kind, argv, dep=None):
        return Cell(cid, kind, "m", cid, None, {}, argv, tmp_path / cid, Resources(), depends_on=dep)

    plan = Plan(SweepSpec(tmp_path / "s.yaml", tmp_path, (), (), ()), [
        cell("good", "compress", ["plugins"]), cell("bad", "compress", ["no-such-command"]),
        cell("after-good", "evaluate", ["plugins"], "good"), cell("after-bad", "evaluate", ["plugins"], "bad"),
    ])  # fmt: skip
    lines: list[str] = []
    got = run_local(plan, max_parallel=max_parallel, out=lines.append)
    assert {k: v["status"] for k, v in got.items()} == {
        "good": "done", "bad": "failed", "after-good": "done", "after-bad": "skipped"}
    assert exit_status(got) == 2
    assert [c.id for c in plan.cells if c.done] == ["good", "after-good"]
    assert "invalid choice" in (tmp_path / "bad" / "log.txt").read_text()
    assert any(line.startswith("[4/4]") for line in lines) and lines[-1].startswith("cells: 2 done, 0 running, 2 failed")
    again = run_local(plan, max_parallel=max_parallel, out=lines.append)  # only what did not finish
    assert sorted(again) == ["after-bad", "bad"]
