"""The recorder hooks on a real evaluation: a broken third-party recorder is reported
once and skipped, and never costs the run or the other recorders a record."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from lrm_backends.hookspecs import hookimpl
from lrm_backends.plugins import PluginWarning, get_plugin_manager

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "lrm_tasks" / "samples"
RESPONSES = {  # the three shipped AIME sample documents
    "demo-1": "2^3 = 8 = 1 mod 7 ... so 2.</think>\nThe answer is \\boxed{2}.",
    "demo-2": "There are \\boxed{24} divisors.</think>\nThe answer is 12.",
    "demo-3": "The largest is 39, so \\boxed{39}",
}


class BrokenRecorder:
    """A third-party recorder with a bug: raises on every record."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def lrm_record_response(self, record, run):
        self.calls += 1
        raise RuntimeError("disk quota exceeded in my_recorder")


class CollectingRecorder:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self.tasks: list[str] = []

    @hookimpl
    def lrm_record_response(self, record):
        self.records.append(record)

    @hookimpl
    def lrm_record_task(self, task, aggregate):
        self.tasks.append(task)


def test_raising_recorder_is_reported_once_and_skipped(tmp_path, monkeypatch):
    import lm_eval

    from lrm_backends.run.lmeval_glue import activate

    monkeypatch.setenv("LRM_DATA_DIR", str(SAMPLES_DIR))
    records_dir = tmp_path / "records"
    monkeypatch.setenv("LRM_RECORDS_DIR", str(records_dir))
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"task": "aime24_lrm", "doc_key": k, "response": r}) + "\n"
                            for k, r in RESPONSES.items()), encoding="utf-8")
    pm = get_plugin_manager()
    # Registered before and after the broken one: neither side may lose a record.
    before, broken, after = CollectingRecorder(), BrokenRecorder(), CollectingRecorder()
    pm.register(before, name="test-before")
    pm.register(broken, name="test-broken-recorder")
    pm.register(after, name="test-after")
    try:
        activate()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = lm_eval.simple_evaluate(model="lrm-replay", model_args=f"responses={path}", tasks=["aime24_lrm"])
    finally:
        for name in ("test-before", "test-broken-recorder", "test-after"):
            pm.unregister(name=name)
    assert "aime24_lrm" in out["results"]  # the run completed
    ours = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert "test-broken-recorder" in str(ours[0].message) and "disk quota exceeded" in str(ours[0].message)
    assert broken.calls == 1  # skipped after its first failure
    for recorder in (before, after):
        assert sorted(r["doc_key"] for r in recorder.records) == sorted(RESPONSES)
        assert recorder.tasks == ["aime24_lrm"]
    written = list(records_dir.glob("lrm_responses_aime24_lrm_*.jsonl"))  # the default recorder too
    assert len(written) == 1 and len(written[0].read_text(encoding="utf-8").splitlines()) == len(RESPONSES)
