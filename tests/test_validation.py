"""Every mistake fails before any model loads, in under 2 seconds, with one exact message.

Each case goes through ``lrm eval`` (one line on stderr, exit 2, no traceback) and
through ``simple_evaluate`` (what plain ``lm_eval`` and Python callers run), with model
construction made to fail loudly if it were ever reached.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from lrm_backends import cli
from lrm_backends.run import validate
from lrm_backends.run.validate import ValidationError

SAMPLES = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
LIMIT_S = 2.0
# lm-eval's task index as validation keeps it (building the real one takes lm-eval 5-15 s;
# test_lm_eval_index_is_built_once_and_kept builds it).
STUB_LM_EVAL_TASKS = ["aime24", "aime25", "gsm8k", "hellaswag", "mmlu"]


class PrunedStub:
    """A backend with a typed signature, registered as lrm-testpruned."""

    def __init__(self, pretrained: str, sparsity: float = 0.5, n_ctx: int | None = None,
                 trust_remote_code: bool = False, dtype: Literal["float16", "float32"] = "float16") -> None:
        raise AssertionError("a model was constructed")


@pytest.fixture(scope="module")
def registered():
    """lrm-testpruned and lrm-vllm registered through the plugin hook; imports warmed up."""
    from lrm_backends.hookspecs import hookimpl
    from lrm_backends.run.lmeval_glue import activate
    from lrm_backends.plugins import get_plugin_manager

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("lrm-testpruned", f"{__name__}:PrunedStub")
            register("lrm-vllm", "lrm_backends.models.vllm:VLLMBackend")

    pm = get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin, name="test-validation")
    activate()
    validate._available_backends()
    validate.validate_cli_args(["--model", "hf", "--tasks", "aime24_lrm"])  # warm imports
    import lm_eval.loggers  # noqa: F401
    try:
        yield
    finally:
        pm.unregister(plugin)


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch, registered):
    for var in ("LRM_DATA_DIR", "LRM_RECORDS_DIR", "LRM_CACHE_DIR", "LRM_REPEATS", "LRM_STRICT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    index = validate.index_path()
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"format": validate.INDEX_FORMAT, "key": validate._index_key(),
                                 "names": STUB_LM_EVAL_TASKS}))
    import lm_eval.api.registry

    def no_model(*_a, **_k):
        raise AssertionError("a model was looked up for loading")

    monkeypatch.setattr(lm_eval.api.registry, "get_model", no_model)
    monkeypatch.chdir(tmp_path)


@dataclass
class Case:
    """One mistake: simple_evaluate's arguments, the environment, the exact message."""

    model: str = "hf"
    model_args: str = ""
    tasks: str = "aime24_lrm"
    output_path: str | None = None
    metadata: dict | None = None
    env: dict | None = None
    limit: str | None = None
    message: str | Callable[[], str] = ""

    def argv(self) -> list[str]:
        out = ["--model", self.model, "--tasks", self.tasks]
        if self.model_args:
            out += ["--model_args", self.model_args]
        if self.output_path:
            out += ["--output_path", self.output_path]
        if self.metadata:
            out += ["--metadata", json.dumps(self.metadata)]
        if self.limit is not None:
            out += ["--limit", self.limit]
        return out

    def expected(self) -> str:
        return self.message() if callable(self.message) else self.message


def _backend_message() -> str:
    from lrm_backends.plugins import unknown_backend_message

    return unknown_backend_message("lrm-guff", validate._available_backends())


CASES: dict[str, Callable[[Path], Case]] = {
    "unknown task": lambda tmp: Case(
        tasks="aime24_lrm,aime24_lmr",
        message="--tasks aime24_lmr: no such task, group or tag. Did you mean 'aime24_lrm' or 'aime24'? "
                "`lm_eval ls tasks` lists them all; your own task YAMLs need --include_path DIR."),
    "unknown group": lambda tmp: Case(
        tasks="lrm_compresion",
        message="--tasks lrm_compresion: no such task, group or tag. Did you mean 'lrm_compression' or "
                "'lrm_compression_paper'? `lm_eval ls tasks` lists them all; your own task YAMLs need "
                "--include_path DIR."),
    "unknown backend": lambda tmp: Case(model="lrm-guff", message=_backend_message),
    "unknown model_args key": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,n_ctxx=4096",
        message="--model_args n_ctxx=4096: the lrm-testpruned backend has no argument 'n_ctxx'. Did you "
                "mean 'n_ctx'? It takes: pretrained, sparsity, n_ctx, trust_remote_code, dtype. Remove it "
                "or correct the name."),
    "wrong type (int)": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,n_ctx=big",
        message="--model_args n_ctx=big: the lrm-testpruned backend expects n_ctx to be an integer. "
                "Pass e.g. n_ctx=1."),
    "wrong type (bool)": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,trust_remote_code=yes",
        message="--model_args trust_remote_code=yes: the lrm-testpruned backend expects trust_remote_code "
                "to be true or false. Pass e.g. trust_remote_code=false."),
    "wrong value (choice)": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,dtype=int4",
        message="--model_args dtype=int4: the lrm-testpruned backend expects dtype to be one of "
                "'float16', 'float32'. Pass e.g. dtype=float16."),
    "sparsity above 1": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,sparsity=1.5",
        message="--model_args sparsity=1.5: expected the fraction of weights pruned, a number strictly "
                "between 0 and 1. Pass e.g. sparsity=0.5 for 50%."),
    "sparsity 0": lambda tmp: Case(
        model="lrm-testpruned", model_args="pretrained=m,sparsity=0",
        message="--model_args sparsity=0: expected the fraction of weights pruned, a number strictly "
                "between 0 and 1. Pass e.g. sparsity=0.5 for 50%."),
    "missing GGUF": lambda tmp: Case(
        model="lrm-gguf", model_args=f"pretrained={tmp}/models/r1-q4.gguf",
        message=f"--model_args pretrained={tmp}/models/r1-q4.gguf: no such file. Pass pretrained=PATH.gguf "
                "(for a multi-part model, its -00001-of-0000N.gguf part)."),
    "GGUF unknown key": lambda tmp: Case(
        model="lrm-gguf", model_args=f"pretrained={tmp}/m.gguf,n_gpu_layer=-1",
        message=lambda: _gguf_unknown_key_message()),
    "lrm-vllm chunk_size": lambda tmp: Case(
        model="lrm-vllm", model_args="pretrained=org/model,chunk_size=0",
        message="--model_args chunk_size=0: expected a positive integer (requests per vllm call; a crash "
                "loses at most one chunk). Pass e.g. chunk_size=128."),
    "lrm-vllm missing folder": lambda tmp: Case(
        model="lrm-vllm", model_args="pretrained=./checkpoints/pruned-50",
        message="--model_args pretrained=./checkpoints/pruned-50: no such folder. Pass an existing local "
                "checkpoint folder or a Hugging Face model name."),
    "lrm-pruned unknown key": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=sparsegpt,sparsty=0.5",
        message="--model_args sparsty=0.5: the lrm-pruned backend has no argument 'sparsty'. Did you mean "
                "'sparsity'? It takes lm-eval's hf arguments plus: pretrained, method, sparsity, pattern, "
                "calib, calib_samples, calib_seqlen, seed, blocksize, percdamp, sequential, ignore, "
                "prune_dtype, prune_device, cache_dir. Remove it or correct the name."),
    "lrm-pruned unknown method": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=sparsgpt,sparsity=0.5",
        message="--model_args method=sparsgpt: the lrm-pruned backend expects method to be one of "
                "'sparsegpt', 'wanda', 'magnitude'. Pass e.g. method=sparsegpt."),
    "lrm-pruned wrong type": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=wanda,sparsity=0.5,calib_samples=many",
        message="--model_args calib_samples=many: the lrm-pruned backend expects calib_samples to be an "
                "integer. Pass e.g. calib_samples=1."),
    "lrm-pruned sparsity": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=wanda,sparsity=50",
        message="--model_args sparsity=50: expected the fraction of weights pruned, a number strictly "
                "between 0 and 1. Pass e.g. sparsity=0.5 for 50%."),
    "lrm-pruned pattern": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=sparsegpt,pattern=4:2",
        message="--model_args pattern=4:2: sparsity pattern '4:2' needs 0 < N < M (N nonzeros out of every "
                "M); use e.g. '2:4' or '4:8'"),
    "lrm-pruned no sparsity": lambda tmp: Case(
        model="lrm-pruned", model_args="pretrained=org/model,method=magnitude",
        message="--model_args method=magnitude: pruning on the fly needs sparsity=FRACTION or pattern=N:M. "
                "Pass e.g. sparsity=0.5."),
    "lrm-pruned missing folder": lambda tmp: Case(
        model="lrm-pruned", model_args=f"pretrained={tmp}/pruned-50",
        message=f"--model_args pretrained={tmp}/pruned-50: no such folder. lrm-pruned loads a folder written "
                "by 'lrm compress'; to prune a model on the fly, add method=sparsegpt|wanda|magnitude and "
                "sparsity=FRACTION."),
    "lrm-pruned folder without manifest": lambda tmp: Case(
        model="lrm-pruned", model_args=f"pretrained={tmp}",
        message=f"--model_args pretrained={tmp}: the folder has no compression.json, so 'lrm compress' did "
                "not write it. Evaluate an unpruned model with --model hf, or add "
                "method=sparsegpt|wanda|magnitude and sparsity=FRACTION to prune it on the fly."),
    "hf checkpoint with only pickled weights": lambda tmp: Case(
        model="hf", model_args=f"pretrained={_pickled(tmp)}", env={"LRM_SAFETENSORS_ONLY": "1"},
        message=f"--model_args pretrained={tmp}/old-model: {tmp}/old-model holds its weights only as pickles "
                "(pytorch_model.bin), and lrm-bench loads checkpoints from safetensors only (a pickle can run "
                "code when loaded). Convert it once where you trust the file (load it with transformers, then "
                "save_pretrained), or use a revision that ships model.safetensors; or pass "
                "use_safetensors=False to load it anyway."),
    "data file missing": lambda tmp: Case(
        tasks="lrm_compression", env={"LRM_DATA_DIR": str(_data_dir(tmp, skip="folio.jsonl"))},
        message=f"LRM_DATA_DIR={tmp}/data is set but {tmp}/data/folio.jsonl does not exist. Put the folio "
                "file there (see the README, 'Offline data'), or unset LRM_DATA_DIR to load "
                "yale-nlp/FOLIO from the Hugging Face Hub."),
    "data file lacks a field": lambda tmp: Case(
        tasks="aime24_lrm", env={"LRM_DATA_DIR": str(_data_dir(tmp, aime='{"ID": "x", "Problem": "p"}'))},
        message=f"{tmp}/data/aime24.jsonl line 1: missing field(s) 'answer'; expected ID/id, Problem/problem, "
                "Answer/answer. Found fields: id, problem."),
    "data folder missing": lambda tmp: Case(
        tasks="folio_lrm", env={"LRM_DATA_DIR": f"{tmp}/nowhere"},
        message=f"LRM_DATA_DIR={tmp}/nowhere: no such folder. Point it at the folder holding the benchmark "
                "files (folio.jsonl; see the README, 'Offline data'), or unset it to load from the "
                "Hugging Face Hub."),
    "repeats": lambda tmp: Case(
        metadata={"repeats": 0},
        message="repeats=0 (from --metadata or $LRM_REPEATS): expected a positive integer (samples per "
                "question). Pass e.g. --repeats 8, --metadata '{\"repeats\": 8}' or LRM_REPEATS=8."),
    "output under a file": lambda tmp: Case(
        output_path=str(_file(tmp) / "results"),
        message=f"--output_path {tmp}/notes.txt/results: cannot write there ({tmp}/notes.txt is a file, "
                "not a folder). Pass a folder you can write to."),
    "records dir under a file": lambda tmp: Case(
        env={"LRM_RECORDS_DIR": str(_file(tmp) / "records")},
        message=f"LRM_RECORDS_DIR={tmp}/notes.txt/records: cannot write there ({tmp}/notes.txt is a file, "
                "not a folder). Pass a folder you can write to."),
    "limit zero": lambda tmp: Case(
        limit="0",
        message="--limit 0: no document would be evaluated. Pass a number of documents per task "
                "(e.g. --limit 8) or a fraction in (0, 1) (e.g. --limit 0.1), or leave --limit out "
                "to evaluate every document."),
    "empty id list": lambda tmp: Case(
        metadata={"ids": str(_empty_ids(tmp))},
        message=f"--metadata ids={tmp}/ids.txt: the file lists no ids. Put one id per line (or a "
                "JSON array), or name a shipped list: " + ", ".join(_shipped_id_lists()) + "."),
    "gguf n_ctx not a number": lambda tmp: Case(
        model="lrm-gguf", model_args="pretrained=/tmp/x.gguf,n_ctx=big",
        message="--model_args n_ctx=big: the lrm-gguf backend expects n_ctx to be an integer. Pass e.g. "
                "n_ctx=40960."),
    "replay responses missing": lambda tmp: Case(
        model="lrm-replay", model_args="responses=/nonexistent.jsonl",
        message="--model_args responses=/nonexistent.jsonl: no such file or folder. Pass lm-eval "
                "samples_*.jsonl (or their folder), per-response records, or JSON lines of "
                '{"task", "doc_key", "response"}.'),
    "replay without responses": lambda tmp: Case(
        model="lrm-replay", model_args="tokenizer=gpt2",
        message="--model lrm-replay needs saved responses: add --model_args responses=PATH (a "
                'samples_*.jsonl file, a folder of them, our records, or JSON lines of {"task", '
                '"doc_key", "response"}).'),
    "replay key typo": lambda tmp: Case(
        model="lrm-replay", model_args=f"responses={tmp},on_misisng=noanswer",
        message="--model_args on_misisng=noanswer: the lrm-replay backend has no argument 'on_misisng'. "
                "Did you mean 'on_missing'? It takes: responses, tokenizer, on_missing. Remove it or "
                "correct the name."),
    "replay on_missing value": lambda tmp: Case(
        model="lrm-replay", model_args=f"responses={tmp},on_missing=skip",
        message="--model_args on_missing=skip: expected one of error, noanswer."),
    "replay responses folder without jsonl": lambda tmp: Case(
        model="lrm-replay", model_args=f"responses={tmp}",
        message=f"--model_args responses={tmp}: the folder holds no .jsonl files. {REPLAY_HELP}"),
    "replay responses empty": lambda tmp: Case(
        model="lrm-replay", model_args="responses=" + _responses(tmp, "\n  \n"),
        message=f"--model_args responses={tmp}/r.jsonl: the file is empty. {REPLAY_HELP}"),
    "replay responses not json lines": lambda tmp: Case(
        model="lrm-replay", model_args="responses=" + _responses(tmp, '{"task": "aime24_lrm",\n'),
        message=f"--model_args responses={tmp}/r.jsonl: line 1 is not JSON (Expecting property name enclosed "
                f"in double quotes); expected one JSON object per line. {REPLAY_HELP}"),
    "replay responses a json array": lambda tmp: Case(
        model="lrm-replay", model_args="responses=" + _responses(tmp, "\n[1, 2]\n"),
        message=f"--model_args responses={tmp}/r.jsonl: line 2 is a JSON list; expected one JSON object per "
                f"line. {REPLAY_HELP}"),
    "replay responses not text": lambda tmp: Case(
        model="lrm-replay", model_args="responses=" + _responses(tmp, b"GGUF\xff\xfe\x00"),
        message=f"--model_args responses={tmp}/r.jsonl: not a text file (not UTF-8). {REPLAY_HELP}"),
    "cache under a file": lambda tmp: Case(
        metadata={"lrm_cache": str(_file(tmp) / "cache")},
        message=f"--cache {tmp}/notes.txt/cache: cannot write there ({tmp}/notes.txt is a file, not a "
                "folder). Pass a folder you can write to."),
}


def _gguf_unknown_key_message() -> str:
    import inspect

    from lrm_backends.models.gguf import GGUFBackend

    params = [p for p in inspect.signature(GGUFBackend.__init__).parameters if p != "self"]
    return (f"--model_args n_gpu_layer=-1: the lrm-gguf backend has no argument 'n_gpu_layer'. Did you "
            f"mean 'n_gpu_layers'? It takes: {', '.join(params)}. Remove it or correct the name.")


def _data_dir(tmp: Path, skip: str | None = None, aime: str | None = None) -> Path:
    folder = tmp / "data"
    folder.mkdir(exist_ok=True)
    for f in SAMPLES.iterdir():
        if f.suffix in (".json", ".jsonl") and f.name != skip:
            (folder / f.name).write_bytes(f.read_bytes())
    if aime is not None:
        (folder / "aime24.jsonl").write_text(aime + "\n")
    return folder


def _pickled(tmp: Path) -> Path:
    folder = tmp / "old-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "pytorch_model.bin").write_bytes(b"never unpickled")
    return folder


REPLAY_HELP = ('Pass lm-eval samples_*.jsonl (or their folder), per-response records, or JSON lines of '
               '{"task", "doc_key", "response"}.')


def _responses(tmp: Path, content: str | bytes) -> str:
    f = tmp / "r.jsonl"
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content, encoding="utf-8")
    return str(f)


def _file(tmp: Path) -> Path:
    f = tmp / "notes.txt"
    f.write_text("not a folder")
    return f


def _empty_ids(tmp: Path) -> Path:
    (tmp / "ids.txt").write_text("# no ids yet\n", encoding="utf-8")
    return tmp / "ids.txt"


def _shipped_id_lists() -> list[str]:
    from lrm_tasks import harness

    return list(harness.ID_LISTS)


def _apply(case: Case, monkeypatch) -> None:
    for key, value in (case.env or {}).items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("name", list(CASES))
def test_lrm_eval_fails_fast_with_one_line(name, tmp_path, monkeypatch, capsys):
    case = CASES[name](tmp_path)
    _apply(case, monkeypatch)
    start = time.perf_counter()
    code = cli.main(["eval", *case.argv()])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert (code, err) == (2, f"lrm: error: {case.expected()}\n")
    assert "Traceback" not in err
    assert elapsed < LIMIT_S, f"{name}: {elapsed:.2f}s"


@pytest.mark.parametrize("name", list(CASES))
def test_simple_evaluate_fails_before_building_the_model(name, tmp_path, monkeypatch):
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    case = CASES[name](tmp_path)
    _apply(case, monkeypatch)
    kwargs: dict[str, Any] = {"model": case.model, "model_args": case.model_args, "tasks": case.tasks.split(",")}
    if case.output_path:
        kwargs["evaluation_tracker"] = EvaluationTracker(output_path=case.output_path)
    if case.metadata:
        kwargs["metadata"] = case.metadata
    if case.limit is not None:
        kwargs["limit"] = float(case.limit)
    start = time.perf_counter()
    with pytest.raises(ValidationError) as err:
        lm_eval.simple_evaluate(**kwargs)
    assert str(err.value) == case.expected()
    assert time.perf_counter() - start < LIMIT_S


def test_debug_shows_the_traceback(tmp_path):
    argv = ["--model", "lrm-guff", "--tasks", "aime24_lrm"]
    with pytest.raises(ValidationError):
        cli.main(["--debug", "eval", *argv])
    with pytest.raises(ValidationError):
        cli.main(["eval", "--debug", *argv])


def test_a_good_run_passes(tmp_path):
    validate.validate_cli_args([
        "--model", "lrm-testpruned", "--model_args", "pretrained=m,sparsity=0.5,n_ctx=4096,dtype=float32",
        "--tasks", "aime24_lrm,gsm8k,lrm_compression", "--output_path", str(tmp_path / "out"),
        "--metadata", json.dumps({"repeats": 4, "lrm_cache": str(tmp_path / "cache")}),
    ])
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # checked, not created


def test_an_unknown_name_found_by_lm_evals_yaml_is_accepted_without_its_index(tmp_path):
    validate.index_path().unlink()
    start = time.perf_counter()
    validate.check_tasks(["gsm8k", "arc_easy"])  # read from lm-eval's task YAMLs as text
    assert time.perf_counter() - start < LIMIT_S
    assert not validate.index_path().exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code = cli.main(["eval", "--model", "hf", "--tasks", "aime24_lrm", "--output_path", str(ro / "out")])
    finally:
        ro.chmod(0o700)
    assert code == 2 and capsys.readouterr().err == (
        f"lrm: error: --output_path {ro}/out: cannot write there ({ro} is not writable by this user, so "
        f"{ro}/out cannot be created). Pass a folder you can write to.\n")


@pytest.mark.slow
def test_lm_eval_index_is_built_once_and_kept(tmp_path):
    validate.index_path().unlink()
    names = validate.lm_eval_task_names()
    assert {"gsm8k", "hellaswag", "aime24_lrm"} <= names
    kept = json.loads(validate.index_path().read_text())
    assert kept["key"] == validate._index_key() and "gsm8k" in kept["names"]
    start = time.perf_counter()
    assert validate.lm_eval_task_names() == names
    assert time.perf_counter() - start < LIMIT_S


def test_plain_lm_eval_keeps_its_own_hf_behaviour(tmp_path, monkeypatch):
    """Without lrm eval's policy (LRM_SAFETENSORS_ONLY unset) lm-eval's hf backend decides."""
    monkeypatch.delenv("LRM_SAFETENSORS_ONLY", raising=False)
    validate.check_model_args("hf", {"pretrained": str(_pickled(tmp_path))})
    monkeypatch.setenv("LRM_SAFETENSORS_ONLY", "1")
    validate.check_model_args("hf", {"pretrained": str(tmp_path / "old-model"), "use_safetensors": False})
    with pytest.raises(ValidationError, match="only as pickles"):
        validate.check_model_args("hf", {"pretrained": str(tmp_path / "old-model")})


def test_lrm_pruned_checks_import_neither_torch_nor_the_hf_backend(tmp_path):
    """validate_model_args reads lm-eval's hf arguments from its source: milliseconds."""
    import subprocess
    import sys

    code = (
        "import sys; from lrm_backends.run import validate\n"
        "validate.check_model_args('lrm-pruned', {'pretrained': 'org/m', 'method': 'sparsegpt', "
        "'sparsity': 0.5, 'batch_size': 8, 'attn_implementation': 'sdpa'})\n"
        "print(sorted(m for m in ('torch', 'transformers', 'lm_eval.models.huggingface') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
    from lrm_backends.models.pruned import hf_backend_arg_names

    assert {"pretrained", "batch_size", "dtype", "device", "max_length", "think_end_token"} <= hf_backend_arg_names()


def test_lrm_eval_option_examples_hold():
    import doctest

    from lrm_backends.cli import eval as lrm_eval

    result = doctest.testmod(lrm_eval)
    assert result.attempted >= 2 and result.failed == 0


def test_lrm_eval_help_shows_our_flags_first(capsys):
    """Issue 16 item 13: our own flags, and --cache vs lm-eval's --use_cache, come first."""
    code = cli.main(["eval", "--help"])
    out = capsys.readouterr().out
    assert code == 0
    ours = out.index("--repeats K")
    for flag in ("--cache DIR", "--strict", "--max-retries N", "--allow-failures", "--reasoning-aware TASKS",
                 "--use_cache"):
        assert flag in out[: out.index("lm_eval's own options follow.")]
    assert ours < out.index("--model_args")  # lm-eval's run options follow ours


@pytest.mark.parametrize("argv, message", [
    (["--model", "hf", "--model_args", "pretrained=x", "--tasks", "musique_ctx_lmr"],
     "lm_eval: error: --tasks musique_ctx_lmr: no such task, group or tag. Did you mean 'musique_ctx_lrm'"),
    (["--model", "lrm-replay", "--model_args", "responses=.,on_misisng=x", "--tasks", "aime24_lrm"],
     "lm_eval: error: --model_args on_misisng=x: the lrm-replay backend has no argument 'on_misisng'. "
     "Did you mean 'on_missing'?"),
])
def test_plain_lm_eval_mistakes_are_one_line(argv, message, tmp_path):
    """Issue 16 item 15: plain `lm_eval` (through the import hook) gives the same one-line
    errors as `lrm eval`, with suggestions, and no traceback."""
    import shutil
    import subprocess
    import sys

    lm_eval = shutil.which("lm_eval", path=str(Path(sys.executable).parent)) or "lm_eval"
    env = {**os.environ, "LRM_DATA_DIR": str(SAMPLES), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([lm_eval, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(message), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("model,args,gen,warned", [
    ("lrm-vllm", "max_model_len=512", ["--gen_kwargs", "max_gen_toks=480"], "leaves 32 tokens for the prompt"),
    ("lrm-vllm", "max_model_len=32768", [], "leaves no room for the prompt beside max_gen_toks=32768"),
    ("vllm", "max_model_len=32768", [], "cuts the PROMPT"),
    ("lrm-gguf", "n_ctx=4096", ["--gen_kwargs", "max_gen_toks=4000"], "n_ctx=4096 leaves 96 tokens"),
    ("lrm-vllm", "max_model_len=40960", [], None),  # our default 32768 + 8192 for the prompt
    ("lrm-vllm", "max_model_len=512", ["--gen_kwargs", "max_gen_toks=128"], None),
])
def test_a_context_too_small_for_the_budget_is_warned_before_loading(model, args, gen, warned, tmp_path, caplog):
    """Issue 13: max_model_len (n_ctx) below max_gen_toks plus a prompt is said before
    anything loads, with what will happen and the value to pass."""
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    pretrained = str(gguf) if model == "lrm-gguf" else "org/some-model"
    with caplog.at_level("WARNING", logger="lrm_backends.run.validate"):
        validate.validate_cli_args(["--model", model, "--model_args", f"pretrained={pretrained},{args}",
                                    "--tasks", "aime24_lrm", *gen])
    said = [r.getMessage() for r in caplog.records if r.name == "lrm_backends.run.validate"]
    if warned is None:
        assert not said, said
    else:
        assert len(said) == 1 and warned in said[0], said
        assert "or a smaller --gen_kwargs max_gen_toks" in said[0]
