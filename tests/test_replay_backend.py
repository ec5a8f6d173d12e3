"""lrm-replay: saved responses in three formats, matched by task and stable key."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from lrm_backends.models.replay import ReplayBackend, ReplayError
from lrm_tasks.text import Generation

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
SAMPLES_NAME = "samples_aime24_lrm_2026-01-01T00-00-00.000001.jsonl"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def req(task: str, doc_key: str | None = None, doc_id: int = 0, repeats: int = 1) -> Instance:
    doc = {"doc_key": doc_key, "problem": "..."} if doc_key is not None else {"q": "..."}
    return Instance("generate_until", doc, ("prompt", {"until": []}), 0, (task, doc_id, repeats))


def test_plain_records_are_served_verbatim(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "aime24_lrm", "doc_key": "2024-I-1", "response": "So \\boxed{25}.</think>\n\\boxed{25}"},
        {"task": "aime24_lrm", "doc_key": "2024-I-2", "response": "  unchanged \n"},
    ])
    lm = ReplayBackend(responses=str(path))
    out = lm.generate_until([req("aime24_lrm", "2024-I-2"), req("aime24_lrm", "2024-I-1")])
    assert [str(o) for o in out] == ["  unchanged \n", "So \\boxed{25}.</think>\n\\boxed{25}"]
    assert all(isinstance(o, Generation) and o.generated_tokens is None and o.count_source is None for o in out)


def test_repeats_get_successive_responses(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "t", "doc_key": "a", "response": ["first", "second"]},
        {"task": "t", "doc_key": "a", "response": "third"},
    ])
    lm = ReplayBackend(responses=str(path))
    r = req("t", "a", repeats=3)
    assert [str(o) for o in lm.generate_until([r, r, r])] == ["first", "second", "third"]


def test_lm_eval_samples_file_one_line_per_filter(tmp_path):
    rows = []
    for filt in ("strict", "flexible"):  # lm-eval writes each document once per filter
        rows += [
            {"doc_id": 0, "doc": {"doc_key": "2024-II-4", "problem": "p"}, "target": "25",
             "resps": [["r1", "r2"]], "filtered_resps": [["x"]], "filter": filt},
            {"doc_id": 1, "doc": {"doc_key": "2024-II-5", "problem": "p"}, "target": "3",
             "resps": [["s1", "s2"]], "filtered_resps": [["y"]], "filter": filt},
        ]
    write_jsonl(tmp_path / "out" / "model__x" / SAMPLES_NAME, rows)
    lm = ReplayBackend(responses=str(tmp_path / "out"))  # a folder of samples files
    a, b = req("aime24_lrm", "2024-II-4", 0, 2), req("aime24_lrm", "2024-II-5", 1, 2)
    assert [str(o) for o in lm.generate_until([a, a, b, b])] == ["r1", "r2", "s1", "s2"]


def test_our_records_keep_backend_counts_and_repeat_order(tmp_path):
    base = {"record_version": 1, "task": "aime24_lrm", "benchmark": "aime24", "doc_key": "k"}
    path = write_jsonl(tmp_path / "lrm_responses_aime24_lrm_2026.jsonl", [
        {**base, "repeat": 1, "response": "B", "total_tokens": 7, "count_source": "backend", "finish_reason": "length"},
        {**base, "repeat": 0, "response": "A", "total_tokens": 5, "count_source": "backend", "finish_reason": "stop"},
        {**base, "doc_key": "r", "repeat": 0, "response": "C", "total_tokens": 9, "count_source": "retokenized"},
    ])
    lm = ReplayBackend(responses=str(path))
    r = req("aime24_lrm", "k", repeats=2)
    a, b, c = lm.generate_until([r, r, req("aime24_lrm", "r")])
    assert (str(a), a.generated_tokens, a.finish_reason, a.count_source) == ("A", 5, "stop", "backend")
    assert (str(b), b.generated_tokens, b.finish_reason) == ("B", 7, "length")
    assert c.generated_tokens is None  # a re-tokenized count is not the backend's


def test_doc_id_matching_and_taskless_records(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "gsm8k", "doc_id": 3, "response": "by id"},
        {"doc_key": "shared", "response": "any task"},
    ])
    lm = ReplayBackend(responses=str(path))
    out = lm.generate_until([req("gsm8k", None, 3), req("one", "shared"), req("two", "shared")])
    assert [str(o) for o in out] == ["by id", "any task", "any task"]


def test_folder_with_records_and_samples_serves_each_response_once(tmp_path):
    write_jsonl(tmp_path / SAMPLES_NAME, [
        {"doc_id": 0, "doc": {"doc_key": "k"}, "resps": [["from samples"]], "filter": "strict"}])
    write_jsonl(tmp_path / "lrm_responses_aime24_lrm.jsonl", [
        {"task": "aime24_lrm", "doc_key": "k", "repeat": 0, "response": "from samples",
         "total_tokens": 3, "count_source": "backend"}])
    lm = ReplayBackend(responses=str(tmp_path))
    r = req("aime24_lrm", "k", repeats=2)
    with pytest.raises(ReplayError, match=r"repeat 2, 1 saved"):
        lm.generate_until([r, r])
    (only,) = lm.generate_until([req("aime24_lrm", "k")])
    assert only.generated_tokens == 3  # the record (with the exact count) won


def test_unmatched_requests_are_a_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"task": "aime24_lrm", "doc_key": "a", "response": "x"}])
    lm = ReplayBackend(responses=str(path))
    reqs = [req("aime24_lrm", "a"), req("aime24_lrm", "b"), req("aime24_lrm_paper", "a")]
    with pytest.raises(ReplayError) as err:
        lm.generate_until(reqs)
    msg = str(err.value)
    assert "2 of 3 requests have no saved response" in msg
    assert "aime24_lrm/b" in msg and "aime24_lrm_paper/a" in msg and "aime24_lrm: 1" in msg
    assert "on_missing=noanswer" in msg


def test_on_missing_noanswer(tmp_path, caplog):
    path = write_jsonl(tmp_path / "r.jsonl", [{"task": "t", "doc_key": "a", "response": "x"}])
    lm = ReplayBackend(responses=str(path), on_missing="noanswer")
    with caplog.at_level(logging.WARNING):
        out = lm.generate_until([req("t", "a"), req("t", "b")])
    assert [str(o) for o in out] == ["x", ""] and out[1].generated_tokens is None
    assert out[0].error is None and out[1].error.startswith("lrm-replay: no saved response")
    assert "1 of 2 requests have no saved response" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task": "t", "doc_key": "a", "response": "x"}\nnot json\n', r"r\.jsonl:2: not valid JSON"),
        ('{"task": "t", "answer": "x"}\n', "unrecognised record"),
        ('{"task": "t", "response": "x"}\n', "neither doc_key nor doc_id"),
        ('{"task": "t", "doc_key": "a", "response": 3}\n', "must be a string or a list"),
        ("\n", "found no responses"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, message):
    (tmp_path / "r.jsonl").write_text(content)
    with pytest.raises(ReplayError, match=message):
        ReplayBackend(responses=str(tmp_path / "r.jsonl"))


def test_bad_arguments(tmp_path):
    with pytest.raises(ReplayError, match="needs saved responses"):
        ReplayBackend()
    with pytest.raises(ReplayError, match="no such file or folder"):
        ReplayBackend(responses=str(tmp_path / "absent.jsonl"))
    with pytest.raises(ReplayError, match="no .jsonl files"):
        ReplayBackend(responses=str(tmp_path))
    path = write_jsonl(tmp_path / "r.jsonl", [{"task": "t", "doc_key": "a", "response": "x"}])
    with pytest.raises(ReplayError, match="on_missing='skip'"):
        ReplayBackend(responses=str(path), on_missing="skip")
    with pytest.raises(ReplayError, match="generated text only"):
        ReplayBackend(responses=str(path)).loglikelihood([])


def test_tokenizer_argument_becomes_lm_tokenizer(tmp_path, tiny_hf_dir):
    path = write_jsonl(tmp_path / "r.jsonl", [{"task": "t", "doc_key": "a", "response": "x"}])
    assert ReplayBackend(responses=str(path)).tokenizer is None
    lm = ReplayBackend(responses=str(path), tokenizer=str(tiny_hf_dir))
    assert lm.tokenizer(["The answer is"], add_special_tokens=False)["input_ids"][0]
    with pytest.raises(ReplayError, match="could not be loaded"):
        ReplayBackend(responses=str(path), tokenizer=str(tmp_path / "no-such-tokenizer"))


def test_replay_through_lm_eval_scores_like_lrm_tasks_scoring(tmp_path, monkeypatch):
    """aime24_lrm on the shipped sample documents: replayed correctness == score()."""
    import lm_eval

    from lrm_backends.run.lmeval_glue import activate
    from lrm_tasks.data import load_docs
    from lrm_tasks.scoring import score

    monkeypatch.setenv("LRM_DATA_DIR", str(SAMPLES_DIR))
    monkeypatch.setenv("LRM_RECORDS_DIR", str(tmp_path / "records"))
    docs = {d["doc_key"]: d for d in load_docs("aime24")}
    responses = {  # right, right only inside the reasoning, never closed
        "demo-1": "2^3 = 8 = 1 mod 7 ... so 2.</think>\nThe answer is \\boxed{2}.",
        "demo-2": "There are \\boxed{24} divisors.</think>\nThe answer is 12.",
        "demo-3": "The largest is 39, so \\boxed{39}",
    }
    assert set(responses) == set(docs)
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "aime24_lrm", "doc_key": k, "response": r} for k, r in responses.items()])
    activate()
    out = lm_eval.simple_evaluate(model="lrm-replay", model_args=f"responses={path}", tasks=["aime24_lrm"], log_samples=True)
    seen = {}
    for s in out["samples"]["aime24_lrm"]:
        expected = score("aime24", responses[s["doc"]["doc_key"]], docs[s["doc"]["doc_key"]])
        want = expected.correct_strict if s["filter"] == "strict" else expected.correct_flexible
        assert s["exact_match"] == float(want)
        seen[s["doc"]["doc_key"], s["filter"]] = want
    assert len(seen) == 6 and any(seen.values()) and not all(seen.values())


def test_console_says_what_came_from_the_cache(tmp_path):
    """Issue 16 item 12: the run ends with "N responses from the cache, M generated"."""
    import os
    import re
    import subprocess
    import sys

    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "aime24_lrm", "doc_key": k, "response": "\\boxed{1}"} for k in ("demo-1", "demo-2", "demo-3")])
    env = {**os.environ, "LRM_DATA_DIR": str(SAMPLES_DIR), "LRM_RECORDS_DIR": str(tmp_path / "records"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    lrm = Path(sys.executable).parent / "lrm"
    cmd = [str(lrm), "eval", "--model", "lrm-replay", "--model_args", f"responses={path}", "--tasks", "aime24_lrm"]
    lines = []
    for extra in ([], ["--cache", str(tmp_path / "cache")], ["--cache", str(tmp_path / "cache")]):
        out = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        lines.append([ln for ln in out.stderr.splitlines() if re.match(r"lrm-bench: \d+ responses", ln)])
    assert lines[0] == ["lrm-bench: 3 responses generated (no --cache: a rerun generates them again)"]
    assert len(lines[1]) == 1 and lines[1][0].startswith("lrm-bench: 0 responses from the cache, 3 generated (cache: ")
    assert len(lines[2]) == 1 and lines[2][0].startswith("lrm-bench: 3 responses from the cache, 0 generated (cache: ")


def test_a_raising_recorder_is_reported_once_and_skipped(tmp_path, monkeypatch):
    """Issue 12 defect 1: a third-party recorder that raises must not crash the
    evaluation after all generation; it is reported once and skipped, the others go on."""
    import warnings

    import lm_eval

    from lrm_backends.hookspecs import hookimpl
    from lrm_backends.plugins import PluginWarning, get_plugin_manager
    from lrm_backends.run.lmeval_glue import activate
    from lrm_tasks.data import load_docs

    class Broken:
        calls = 0

        @hookimpl
        def lrm_record_response(self, record):
            Broken.calls += 1
            raise RuntimeError("disk full")

    class Collector:
        records: list = []
        tasks: list = []

        @hookimpl
        def lrm_record_response(self, record, run):
            Collector.records.append((record["doc_key"], run.model))

        @hookimpl
        def lrm_record_task(self, task):
            Collector.tasks.append(task)

    monkeypatch.setenv("LRM_DATA_DIR", str(SAMPLES_DIR))
    monkeypatch.setenv("LRM_RECORDS_DIR", str(tmp_path / "records"))
    keys = [d["doc_key"] for d in load_docs("aime24")]
    path = write_jsonl(tmp_path / "r.jsonl", [
        {"task": "aime24_lrm", "doc_key": k, "response": "so \\boxed{1}.</think>\n\\boxed{1}"} for k in keys])
    pm = get_plugin_manager()
    pm.register(Broken(), name="broken-recorder")
    pm.register(Collector(), name="collector")
    try:
        activate()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = lm_eval.simple_evaluate(model="lrm-replay", model_args=f"responses={path}", tasks=["aime24_lrm"])
    finally:
        pm.unregister(name="broken-recorder")
        pm.unregister(name="collector")
    assert out["results"]["aime24_lrm"]["exact_match,strict"] is not None
    assert Broken.calls == 1
    ours = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert len(ours) == 1 and "broken-recorder" in str(ours[0].message) and "disk full" in str(ours[0].message)
    assert sorted(k for k, _ in Collector.records) == sorted(keys)
    assert Collector.tasks == ["aime24_lrm"]
    assert list((tmp_path / "records").glob("lrm_responses_aime24_lrm_*.jsonl"))  # the default recorder too


# ------------------------------------------------- mistakes on the command line (defect 3)
# Through the installed commands, with lrm-replay's constructor replaced (through the
# autoload hook's own post-import table) by one that prints TRAP and exits 97: a mistake
# must be one line on stderr, exit 2, and never reach the backend.
TRAP = "TRAP: lrm-replay was constructed"
_PROBE = f'''
import os, sys

def trap(module):
    def refuse(self, *args, **kwargs):
        print({TRAP!r}, file=sys.stderr, flush=True)
        os._exit(97)
    module.ReplayBackend.__init__ = refuse
'''
_SITECUSTOMIZE = """
import lrm_backends._autoload as autoload
autoload.POST_IMPORT_HOOKS["lrm_backends.models.replay"] = "lrm_replay_probe:trap"
"""
_HELP = ('Pass lm-eval samples_*.jsonl (or their folder), per-response records, or JSON lines of '
         '{"task", "doc_key", "response"}.')
CLI_MISTAKES = {
    "missing file": (lambda tmp: "responses=/nonexistent.jsonl",
                     lambda tmp: f"--model_args responses=/nonexistent.jsonl: no such file or folder. {_HELP}"),
    "key typo": (lambda tmp: f"responses={tmp},on_misisng=noanswer",
                 lambda tmp: "--model_args on_misisng=noanswer: the lrm-replay backend has no argument "
                             "'on_misisng'. Did you mean 'on_missing'? It takes: responses, tokenizer, "
                             "on_missing. Remove it or correct the name."),
    "on_missing value": (lambda tmp: f"responses={tmp},on_missing=skip",
                         lambda tmp: "--model_args on_missing=skip: expected one of error, noanswer."),
    "empty file": (lambda tmp: f"responses={_touch(tmp / 'r.jsonl')}",
                   lambda tmp: f"--model_args responses={tmp}/r.jsonl: the file is empty. {_HELP}"),
}


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


@pytest.fixture
def trapped_env(tmp_path, offline_env) -> dict[str, str]:
    """offline_env, plus lrm-replay's constructor replaced by the TRAP."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "lrm_replay_probe.py").write_text(_PROBE)
    (probe / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    return {**offline_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(probe), offline_env.get("PYTHONPATH")]))}


def _command(name: str) -> list[str]:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    return [exe, "eval"] if name == "lrm" else [exe, "run"]


@pytest.mark.parametrize("command", ["lrm", "lm_eval"])
@pytest.mark.parametrize("mistake", list(CLI_MISTAKES))
def test_a_mistake_in_model_args_is_one_line_before_the_backend_is_built(command, mistake, tmp_path, trapped_env):
    args, message = CLI_MISTAKES[mistake]
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run([*_command(command), "--model", "lrm-replay", "--model_args", args(work),
                          "--tasks", "aime24_lrm"],
                         capture_output=True, text=True, env=trapped_env, cwd=tmp_path, timeout=300)
    assert TRAP not in out.stderr
    assert "Traceback" not in out.stderr
    prog = "lrm" if command == "lrm" else "lm_eval"
    assert (out.returncode, out.stderr) == (2, f"{prog}: error: {message(work)}\n")


@pytest.mark.slow
def test_the_trap_fires_when_the_arguments_are_good(tmp_path, trapped_env):
    """The check above can fail: good arguments do reach the constructor."""
    good = write_jsonl(tmp_path / "r.jsonl", [{"task": "aime24_lrm", "doc_key": "x", "response": "1"}])
    out = subprocess.run([*_command("lm_eval"), "--model", "lrm-replay", "--model_args", f"responses={good}",
                          "--tasks", "aime24_lrm", "--limit", "1"],
                         capture_output=True, text=True, env=trapped_env, cwd=tmp_path, timeout=600)
    assert out.returncode == 97 and TRAP in out.stderr, out.stderr[-3000:]
