"""Loading benchmarks from LRM_DATA_DIR in Hub and release formats, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrm_tasks import data
from lrm_tasks.harness import load_dataset

SAMPLES = Path(data.__file__).parent / "samples"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_samples_load_in_canonical_schema():
    aime = data.load_docs("aime24", data_dir=SAMPLES)
    assert [d["doc_key"] for d in aime] == ["demo-1", "demo-2", "demo-3"]
    assert aime[1]["answer"] == "24" and aime[1]["problem"].startswith("How many")
    bbh = data.load_docs("bbh_temporal_sequences", data_dir=SAMPLES)
    assert bbh[0]["doc_key"] == "0" and bbh[0]["target"] == "(B)"
    assert bbh[0]["options"] == {"A": "6am to 9am", "B": "3pm to 5pm", "C": "9am to 3pm", "D": "5pm to 8pm"}
    folio = data.load_docs("folio", data_dir=SAMPLES)
    assert [d["label"] for d in folio] == ["True", "False", "Uncertain"]
    assert folio[0]["doc_key"] == "1"
    mus = data.load_docs("musique", data_dir=SAMPLES)
    assert mus[2]["answer_aliases"] == ["Japanese yen", "JPY"] and len(mus[0]["paragraphs"]) == 3


def test_env_var_selects_the_folder(monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(SAMPLES))
    assert len(data.load_docs("aime24")) == 3


def test_release_formats(tmp_path):
    # AIME: lower-case keys (Qwen2.5-Math copy) and a leading-zero answer.
    write_jsonl(tmp_path / "aime24.jsonl", [{"id": "2024-I-1", "problem": "p", "answer": "033", "url": "u"}])
    assert data.load_docs("aime24", data_dir=tmp_path)[0] == {
        "doc_key": "2024-I-1", "problem": "p", "answer": "33", "solution": ""}
    # FOLIO v0.0: premises as a list, 'Unknown' for Uncertain, no ids.
    write_jsonl(tmp_path / "folio.jsonl", [{"premises": ["A.", "B."], "conclusion": "C.", "label": "Unknown"}])
    doc = data.load_docs("folio", data_dir=tmp_path)[0]
    assert (doc["premises"], doc["label"], doc["doc_key"]) == ("A.\nB.", "Uncertain", "row-0")
    # BBH as plain JSON lines rows.
    write_jsonl(tmp_path / "bbh_temporal_sequences.jsonl",
                [{"input": "Q?\nOptions:\n(A) x\n(B) y", "target": "(B)"}])
    assert data.load_docs("bbh_temporal_sequences", data_dir=tmp_path)[0]["options"] == {"A": "x", "B": "y"}
    # MuSiQue as one JSON array in a .jsonl file (the paper's random_100 layout).
    (tmp_path / "musique.jsonl").write_text(json.dumps([{"id": "q1", "question": "Q", "answer": "A"}]))
    assert data.load_docs("musique", data_dir=tmp_path)[0]["answer_aliases"] == []


def test_missing_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(data.DataError) as err:
        data.load_docs("folio", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "folio.jsonl") in msg and "unset LRM_DATA_DIR" in msg and "yale-nlp/FOLIO" in msg


def test_missing_field_names_file_line_and_expected_fields(tmp_path):
    write_jsonl(tmp_path / "aime24.jsonl", [{"ID": "x", "Problem": "p", "Answer": 1}, {"ID": "y", "Problem": "q"}])
    with pytest.raises(data.DataError, match=r"aime24.jsonl line 2: missing field\(s\) 'answer'; expected ID/id, Problem/problem, Answer/answer"):
        data.load_docs("aime24", data_dir=tmp_path)


def test_malformed_json_and_bad_labels(tmp_path):
    (tmp_path / "musique.jsonl").write_text('{"id": "a", "question": "q", "answer": "x"}\n{not json\n')
    with pytest.raises(data.DataError, match=r"musique.jsonl line 2: not valid JSON"):
        data.load_docs("musique", data_dir=tmp_path)
    write_jsonl(tmp_path / "folio.jsonl", [{"premises": "p", "conclusion": "c", "label": "Maybe"}])
    with pytest.raises(data.DataError, match=r"label 'Maybe' is not one of True, False, Uncertain"):
        data.load_docs("folio", data_dir=tmp_path)
    write_jsonl(tmp_path / "aime24.jsonl", [{"ID": "x", "Problem": "p", "Answer": "twelve"}])
    with pytest.raises(data.DataError, match=r"answer 'twelve' is not an AIME integer"):
        data.load_docs("aime24", data_dir=tmp_path)


def test_id_subsets_keep_the_requested_order(tmp_path, caplog):
    rows = [{"id": f"q{i}", "question": "Q", "answer": "A"} for i in range(4)]
    write_jsonl(tmp_path / "musique.jsonl", rows)
    (tmp_path / "ids.txt").write_text("# comment\nq3\nq1\nq9\n")
    ds = load_dataset("musique", ids=str(tmp_path / "ids.txt"), data_dir=str(tmp_path))
    assert ds["test"]["doc_key"] == ["q3", "q1"]
    assert "1 of 3 requested ids are missing" in caplog.text
    with pytest.raises(data.DataError, match="none of the 1 requested musique ids"):
        load_dataset("musique", ids=["zz"], data_dir=str(tmp_path))


def test_paper100_id_list_ships_with_the_package():
    from lrm_tasks.harness import _resolve_ids

    ids = _resolve_ids("paper100")
    assert len(ids) == len(set(ids)) == 100
    assert ids[0] == "2hop__151750_141308"
