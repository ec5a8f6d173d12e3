"""``lrm report``: three fake run folders in lm-eval's real output format, every table
number checked against values worked out by hand (in the comments), every figure
written. The fake runs come from ``lrm_backends.report.fake_runs`` (also used by
``bench/bench_report.py``)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from lrm_backends.report import ReportError, build_report
from lrm_backends.report.compression import from_manifest, from_name
from lrm_backends.report.fake_runs import resp, write_fake_run
from lrm_backends.report.stats import length_bins, mann_whitney_u

def words(reasoning: int, answer: int | None) -> str:
    """A response whose whitespace-token counts are known: ``reasoning`` words, then
    ``</think>`` and ``answer`` words (None: the thinking never closes)."""
    if answer is None:
        return "w " * (reasoning - 1) + "w"
    return "w " * reasoning + "</think> " + " ".join(["a"] * answer)


D = ["d1", "d2", "d3", "d4"]


def _base_tasks() -> dict[str, list[dict]]:
    return {
        "aime24_lrm": [resp("d1", 1, 1, 100, 90), resp("d2", 1, 1, 200, 190), resp("d3", 1, 1, 300, 290),
                       resp("d4", 0, 1, 1000, 1000, trunc=1, noans=1)],
        "folio_lrm": [resp(d, c, c, t, t - 5) for d, c, t in zip(D, [1, 1, 0, 0], [100, 100, 500, 500])],
        "musique_lrm": [resp("d1", 1, 1, 50, 45, f1s=1.0), resp("d2", 0, 1, 60, 55, f1s=0.5, f1f=1.0),
                        resp("d3", 0, 0, 70, 65), resp("d4", 0, 0, 80, 75, noans=1)],
        "musique_ctx_lrm": [resp(d, c, c, 40, 35, f1s=f) for d, c, f in zip(D, [1, 1, 1, 0], [1, 1, 1, 0.5])],
    }


def _quant_tasks(seed: int) -> dict[str, list[dict]]:
    if seed == 1:
        aime = [resp("d1", 1, 1, 150), resp("d2", 0, 0, 800), resp("d3", 0, 0, 900, noans=1),
                resp("d4", 0, 0, 1000, trunc=1, noans=1)]
        folio, musique_f1, ctx = [1, 0, 0, 0], [0.5, 0, 0, 0], [1, 1, 1, 0]
    else:
        aime = [resp("d1", 1, 1, 120), resp("d2", 1, 1, 300), resp("d3", 0, 0, 950),
                resp("d4", 0, 0, 1000, trunc=1, noans=1)]
        folio, musique_f1, ctx = [1, 1, 0, 0], [0.5, 0.5, 0, 0], [1, 1, 0, 0]
    return {
        "aime24_lrm": aime,
        "folio_lrm": [resp(d, c, c, t) for d, c, t in zip(D, folio, [200, 200, 600, 600])],
        "musique_lrm": [resp(d, 0, 0, 100, f1s=f) for d, f in zip(D, musique_f1)],
        "musique_ctx_lrm": [resp(d, c, c, 50, f1s=float(c)) for d, c in zip(D, ctx)],
    }


def _pruned_tasks() -> dict[str, list[dict]]:
    # Token counts come from re-tokenizing these texts (whitespace tokenizer):
    # closed: reasoning words + "</think>" = reasoning tokens, plus the answer words.
    return {
        "aime24_lrm": [resp("d1", 1, 1, 0, text=words(48, 1)), resp("d2", 0, 0, 0, text=words(98, 1)),
                       resp("d3", 0, 0, 0, text=words(198, 1)), resp("d4", 0, 0, 0, noans=1, text=words(1000, None))],
        "folio_lrm": [resp(d, 0, int(d == "d1"), 0, text=words(9, 1)) for d in D],
        "musique_lrm": [resp(d, 0, 0, 0, noans=1, text=words(20, None)) for d in D],
        "musique_ctx_lrm": [resp(d, c, c, 0, f1s=f, text=words(19, 1))
                            for d, c, f in zip(D, [1, 1, 0, 0], [1.0, 1.0, 0.5, 0.0])],
    }


def whitespace_tokenizer(path: Path) -> Path:
    """A tokenizer.json whose tokens are the whitespace-separated words."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "w": 1, "a": 2, "</think>": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return path


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("runs")
    write_fake_run(root / "full" / "org__R1-Tiny", model="hf", model_args={"pretrained": "org/R1-Tiny", "dtype": "bfloat16"},
                   timestamp="2026-01-01T10-00-05.000001", seed=0, tasks=_base_tasks())
    for seed, ts in ((1, "2026-01-02T10-00-05.000001"), (2, "2026-01-03T10-00-05.000001")):
        write_fake_run(root / "q4", model="lrm-gguf", model_args={"pretrained": "/models/R1-Tiny-Q4_K_M.gguf"},
                       timestamp=ts, seed=seed, tasks=_quant_tasks(seed))
    pruned_model = root / "models" / "R1-Tiny-pruned"
    pruned_model.mkdir(parents=True)
    (pruned_model / "compression.json").write_text(json.dumps({
        "schema_version": 1, "method": "sparsegpt", "source_model": "org/R1-Tiny", "wall_time_s": 1.0,
        "sparsity": {"target": 0.5, "achieved": 0.49, "pattern": "unstructured"}, "quantization": None,
    }))
    write_fake_run(root / "pruned", model="hf", model_args={"pretrained": str(pruned_model)},
                   timestamp="2026-01-04T10-00-05.000001", seed=0, tasks=_pruned_tasks(),
                   records=False, token_metrics=False)
    tok = whitespace_tokenizer(root / "tok")
    out = root / "report"
    from lrm_backends.cli import main

    rc = main(["report", str(root / "full"), str(root / "q4"), str(root / "pruned"), "--out", str(out),
               "--label", f"{root / 'pruned'}=R1-Tiny-SparseGPT", "--tokenizer", str(tok), "--quiet",
               "--jobs", "2"])  # the forked drawing path
    assert rc == 0
    return {"root": root, "out": out, "json": json.loads((out / "report.json").read_text())}


def _row(rows: list[dict], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def _check(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if value is None:
            assert row[key] is None, (key, row[key])
        else:
            assert row[key] == pytest.approx(value, abs=1e-9), (row["model"], row.get("task"), key)


BASE, QUANT, PRUNED = "R1-Tiny", "R1-Tiny-Q4_K_M", "R1-Tiny-SparseGPT"
SE_1110 = 0.25  # sd of [1, 1, 1, 0] = 0.5, / sqrt(4)
SE_1100 = math.sqrt(1 / 3) / 2  # sd of [1, 1, 0, 0] = sqrt(1/3)


def test_models_compression_and_pooling(three_runs):
    models = three_runs["json"]["models"]
    assert [m["model"] for m in models] == [BASE, QUANT, PRUNED]  # base, then quants, then prunings
    base, quant, pruned = models
    assert (base["kind"], base["base"], base["runs"]) == (None, "r1-tiny", 1)
    assert (quant["kind"], quant["quant_type"], quant["bits_per_weight"], quant["base"], quant["runs"]) == (
        "bits", "Q4_K_M", 4.84, "r1-tiny", 2)
    assert quant["compression_source"] == "name" and [s["random_seed"] for s in quant["seeds"]] == [1, 2]
    main = three_runs["json"]["main"]
    assert {r["source"] for r in main if r["model"] != PRUNED} == {"records"}  # preferred over samples
    assert {r["source"] for r in main if r["model"] == PRUNED} == {"samples"}
    assert (pruned["kind"], pruned["method"], pruned["sparsity"], pruned["base"], pruned["compression_source"]) == (
        "sparsity", "sparsegpt", 0.49, "r1-tiny", "manifest")


def test_main_table_base_model(three_runs):
    main = three_runs["json"]["main"]
    # aime: strict [1,1,1,0]; flexible all right; reasoning (90+190+290+1000)/4; total (100+200+300+1000)/4
    _check(_row(main, model=BASE, task="aime24_lrm"), dict(
        runs=1, questions=4, responses=4, score_strict=0.75, score_strict_se=SE_1110, score_flexible=1.0,
        score_flexible_se=0.0, mean_reasoning_tokens=392.5, mean_total_tokens=400.0, truncation_rate=0.25,
        no_answer_strict=0.25, no_answer_flexible=0.0, f1_strict=None, tokens_known=1.0))
    # folio: [1,1,0,0]; reasoning (95+95+495+495)/4
    _check(_row(main, model=BASE, task="folio_lrm"), dict(
        score_strict=0.5, score_strict_se=SE_1100, mean_reasoning_tokens=295.0, truncation_rate=0.0,
        no_answer_strict=0.0))
    # musique closed-book: EM [1,0,0,0]; F1 strict (1+.5)/4; flexible EM [1,1,0,0], F1 (1+1)/4
    _check(_row(main, model=BASE, task="musique_lrm"), dict(
        score_strict=0.25, score_flexible=0.5, f1_strict=0.375, f1_flexible=0.5, mean_reasoning_tokens=60.0,
        no_answer_strict=0.25))
    _check(_row(main, model=BASE, task="musique_ctx_lrm"), dict(
        score_strict=0.75, score_strict_se=SE_1110, f1_strict=0.875, mean_reasoning_tokens=35.0))


def test_main_table_pools_seeds_per_question(three_runs):
    main = three_runs["json"]["main"]
    # aime over seeds 1 and 2: per question [1, .5, 0, 0]; its sd sqrt(.6875/3), / 2
    _check(_row(main, model=QUANT, task="aime24_lrm"), dict(
        runs=2, questions=4, responses=8, score_strict=0.375, score_strict_se=math.sqrt(0.6875 / 3) / 2,
        # per question reasoning (150+120)/2, (800+300)/2, (900+950)/2, 1000
        mean_reasoning_tokens=(135 + 550 + 925 + 1000) / 4, truncation_rate=0.25,
        no_answer_strict=(0 + 0 + 0.5 + 1) / 4))
    _check(_row(main, model=QUANT, task="folio_lrm"), dict(score_strict=0.375, mean_reasoning_tokens=400.0))
    # musique F1 per question [.5, .25, 0, 0]
    _check(_row(main, model=QUANT, task="musique_lrm"), dict(score_strict=0.0, f1_strict=0.1875))
    _check(_row(main, model=QUANT, task="musique_ctx_lrm"), dict(score_strict=0.625))


def test_main_table_samples_only_run_is_retokenized(three_runs):
    main = three_runs["json"]["main"]
    # whitespace tokens: reasoning 48+1, 98+1, 198+1 (the </think>), 1000 (never closed)
    row = _row(main, model=PRUNED, task="aime24_lrm")
    _check(row, dict(runs=1, responses=4, score_strict=0.25, score_strict_se=0.25,
                     mean_reasoning_tokens=(49 + 99 + 199 + 1000) / 4, mean_total_tokens=(50 + 100 + 200 + 1000) / 4,
                     truncation_rate=0.25,  # 1000 tokens reach max_gen_toks=1000
                     no_answer_strict=0.25))
    assert row["source"] == "samples"
    _check(_row(main, model=PRUNED, task="folio_lrm"), dict(score_strict=0.0, score_flexible=0.25,
                                                            mean_reasoning_tokens=10.0, mean_total_tokens=11.0))
    _check(_row(main, model=PRUNED, task="musique_lrm"), dict(score_strict=0.0, no_answer_strict=1.0,
                                                              mean_reasoning_tokens=20.0))
    _check(_row(main, model=PRUNED, task="musique_ctx_lrm"), dict(score_strict=0.5, f1_strict=0.625,
                                                                  mean_total_tokens=21.0))


def test_reasoning_averages(three_runs):
    avg = three_runs["json"]["averages"]
    # over aime24 and folio: score mean; se = sqrt(se_a^2 + se_f^2) / 2
    _check(_row(avg, model=BASE), dict(tasks=2, score_strict=0.625, score_strict_se=math.sqrt(SE_1110**2 + SE_1100**2) / 2,
                                       score_flexible=0.75, mean_reasoning_tokens=(392.5 + 295) / 2,
                                       truncation_rate=0.125))
    _check(_row(avg, model=QUANT), dict(score_strict=0.375))
    _check(_row(avg, model=PRUNED), dict(score_strict=0.125, score_flexible=0.25))  # flexible: aime .25, folio .25


def _normal_p(u: float, n1: int, n2: int, ties: float) -> float:
    """Two-sided Mann-Whitney p by hand: normal approximation, tie and continuity corrected."""
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    return math.erfc((abs(u - n1 * n2 / 2) - 0.5) / sigma / math.sqrt(2))


def test_length_table(three_runs):
    length = three_runs["json"]["length"]
    # base aime: correct [100,200,300] all shorter than the incorrect [1000]: U = 0
    _check(_row(length, model=BASE, task="aime24_lrm"), dict(
        n_correct=3, n_incorrect=1, mean_tokens_correct=200.0, mean_tokens_incorrect=1000.0,
        median_tokens_correct=200.0, u_statistic=0.0, prob_correct_longer=0.0, p_value=_normal_p(0, 3, 1, 0)))
    # quant aime pooled over seeds: correct [150,120,300], incorrect [800,900,1000,950,1000] (1000 twice: t^3-t = 6)
    _check(_row(length, model=QUANT, task="aime24_lrm"), dict(
        n_correct=3, n_incorrect=5, median_tokens_correct=150.0, median_tokens_incorrect=950.0,
        mean_tokens_incorrect=930.0, u_statistic=0.0, p_value=_normal_p(0, 3, 5, 6)))
    assert _row(length, model=QUANT, task="aime24_lrm")["p_value"] == pytest.approx(0.03577, abs=1e-4)
    # folio base: correct [100,100], incorrect [500,500]
    _check(_row(length, model=BASE, task="folio_lrm"), dict(u_statistic=0.0, p_value=_normal_p(0, 2, 2, 12)))
    # pruned folio: nothing correct (strict): no test
    _check(_row(length, model=PRUNED, task="folio_lrm"), dict(n_correct=0, n_incorrect=4, u_statistic=None,
                                                              p_value=None, prob_correct_longer=None))
    # musique_ctx quant: tokens all 50: every pair tied, U = n1 n2 / 2, p = 1
    _check(_row(length, model=QUANT, task="musique_ctx_lrm"), dict(n_correct=5, n_incorrect=3, u_statistic=7.5,
                                                                   prob_correct_longer=0.5, p_value=1.0))


def test_quantile_table(three_runs):
    q = three_runs["json"]["quantiles"]
    # quant aime, 8 responses sorted [120,150,300,800,900,950,1000,1000]: two per quantile
    rows = sorted((r for r in q if r["model"] == QUANT and r["task"] == "aime24_lrm"), key=lambda r: r["quantile"])
    assert [(r["quantile"], r["n"], r["tokens_min"], r["tokens_max"], r["median_tokens"], r["accuracy"]) for r in rows] == [
        (1, 2, 120, 150, 135, 1.0), (2, 2, 300, 800, 550, 0.5), (3, 2, 900, 950, 925, 0.0), (4, 2, 1000, 1000, 1000, 0.0)]
    rows = sorted((r for r in q if r["model"] == BASE and r["task"] == "aime24_lrm"), key=lambda r: r["quantile"])
    assert [(r["quantile"], r["mean_tokens"], r["accuracy"]) for r in rows] == [
        (1, 100, 1.0), (2, 200, 1.0), (3, 300, 1.0), (4, 1000, 0.0)]
    # base folio [100,100,500,500]: the 500s span Q3 and Q4 and move whole to Q4; Q2, Q3 empty
    rows = [r for r in q if r["model"] == BASE and r["task"] == "folio_lrm"]
    assert [(r["quantile"], r["n"], r["accuracy"]) for r in rows] == [(1, 2, 1.0), (4, 2, 0.0)]


def test_knowledge_vs_reasoning_and_curves(three_runs):
    kr = three_runs["json"]["knowledge_vs_reasoning"]
    # drops from the base: knowledge .25-0, context .75-.625, reasoning .625-.375
    _check(_row(kr, model=QUANT), dict(knowledge_drop=0.25, context_drop=0.125, reasoning_drop=0.25,
                                       knowledge_drop_relative=1.0, drop_aime24_lrm=0.375, drop_folio_lrm=0.125,
                                       level=4.84))
    _check(_row(kr, model=PRUNED), dict(knowledge_drop=0.25, context_drop=0.25, reasoning_drop=0.5,
                                        reasoning_drop_relative=0.8, drop_aime24_lrm=0.5, drop_folio_lrm=0.5,
                                        level=0.49))
    curves = three_runs["json"]["compression_curves"]
    sp = [(r["model"], r["x"], r["score_strict"]) for r in curves if r["axis"] == "sparsity" and r["task"] == "reasoning_avg"]
    assert sp == [(BASE, 0.0, 0.625), (PRUNED, 0.49, 0.125)]
    bits = [(r["model"], r["x"], r["mean_reasoning_tokens"]) for r in curves if r["axis"] == "bits" and r["task"] == "aime24_lrm"]
    assert bits == [(BASE, 16.0, 392.5), (QUANT, 4.84, 652.5)]


def test_every_figure_written_and_outputs_agree(three_runs):
    out: Path = three_runs["out"]
    data = three_runs["json"]
    figs = {f["path"] for f in data["figures"]}
    tasks = ["aime24_lrm", "folio_lrm", "musique_lrm", "musique_ctx_lrm"]
    expected = {f"figures/score_vs_tokens_{t}.png" for t in tasks} | {"figures/score_vs_tokens_overview.png"}
    expected |= {f"figures/length_correct_vs_incorrect_{t}.png" for t in tasks}
    expected |= {f"figures/accuracy_by_length_{t}.png" for t in tasks}
    expected |= {"figures/compression_r1-tiny_sparsity.png", "figures/compression_r1-tiny_bits.png",
                 "figures/knowledge_vs_reasoning_r1-tiny.png"}
    assert figs == expected
    for rel in figs:
        png = (out / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, rel
    md = (out / "report.md").read_text()
    assert "| R1-Tiny | 1 | 75.0 ± 25.0 [100.0] | 50.0 ± 28.9 [50.0] | 62.5 ± 19.1 [75.0] | 25.0 ± 25.0 [50.0] | 37.5" in md
    assert "| R1-Tiny-Q4_K_M | 2 | 37.5 ± 23.9 [37.5] |" in md
    for rel in expected:
        assert f"]({rel})" in md
    with open(out / "main.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and float(_row(rows, model=QUANT, task="aime24_lrm")["score_strict"]) == 0.375


def test_results_only_run_feeds_the_main_table(tmp_path):
    """Without --log_samples the main table comes from results_*.json; no length rows."""
    write_fake_run(tmp_path / "run", model="hf", model_args={"pretrained": "org/R1-Tiny"},
                   timestamp="2026-01-01T10-00-05.000001", seed=0, tasks=_base_tasks(), records=False, samples=False)
    report = build_report([str(tmp_path / "run")], tmp_path / "out", figures=False, progress=False)
    row = _row(report.tables.main, task="aime24_lrm")
    _check(row, dict(score_strict=0.75, score_strict_se=SE_1110, mean_reasoning_tokens=392.5, responses=None, questions=4))
    assert row["source"] == "results" and report.tables.length == []


def test_records_only_folder(tmp_path):
    """$LRM_RECORDS_DIR or ~/.cache/lrm-bench/records/<model>: our records, no lm-eval files."""
    results = write_fake_run(tmp_path / "recs", model="hf", model_args={"pretrained": "/m/R1-Tiny-Q8_0.gguf"},
                             timestamp="2026-01-01T10-00-05.000001", seed=0, tasks=_base_tasks(), samples=False)
    results.unlink()
    path = next((tmp_path / "recs").glob("lrm_responses_aime24_lrm_*.jsonl"))
    lines = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps({**json.loads(lines[0]), "error": "timeout"}), *lines[1:]]) + "\n")
    report = build_report([str(tmp_path / "recs")], tmp_path / "out", figures=False, progress=False)
    assert any("1 of 4 responses failed in the backend" in n for n in report.tables.notes)
    assert [m["model"] for m in report.tables.models] == ["R1-Tiny-Q8_0"]
    assert report.tables.models[0]["quant_type"] == "Q8_0"
    _check(_row(report.tables.main, task="aime24_lrm"), dict(score_strict=0.75, mean_reasoning_tokens=392.5))


def test_repeats_in_samples_are_rescored(tmp_path):
    """k responses per question in samples (no records): each response scored again."""
    right, wrong = words(3, None) + " </think> \\boxed{25}", words(5, None) + " </think> \\boxed{7}"
    tasks = {"aime24_lrm": [resp("2024-I-1", 1, 1, 4, text=right), resp("2024-I-1", 0, 0, 6, text=wrong),
                            resp("2024-I-2", 0, 0, 6, text=wrong), resp("2024-I-2", 0, 0, 6, text=wrong)]}
    write_fake_run(tmp_path / "run", model="hf", model_args={"pretrained": "org/R1-Tiny"}, repeats=2,
                   timestamp="2026-01-01T10-00-05.000001", seed=0, tasks=tasks, records=False, token_metrics=False)
    tok = whitespace_tokenizer(tmp_path / "tok")
    report = build_report([str(tmp_path / "run")], tmp_path / "out", tokenizer=str(tok), figures=False, progress=False)
    _check(_row(report.tables.main, task="aime24_lrm"), dict(responses=4, score_strict=0.25, mean_total_tokens=6.5))  # per question (5+7)/2, 7
    _check(_row(report.tables.length, task="aime24_lrm"), dict(n_correct=1, n_incorrect=3, mean_tokens_correct=5.0,
                                                              mean_tokens_incorrect=7.0))


def test_bad_run_dirs_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="empty: no lm-eval results file"):
        build_report([str(tmp_path / "empty")], tmp_path / "out", figures=False, progress=False)
    with pytest.raises(ReportError, match="nowhere: no such file or folder"):
        build_report([str(tmp_path / "nowhere")], tmp_path / "out", figures=False, progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results_2026-01-01T10-00-05.000001.json").write_text("{not json")
    with pytest.raises(ReportError, match="results_2026-01-01T10-00-05.000001.json: cannot be read as JSON"):
        build_report([str(tmp_path / "bad")], tmp_path / "out", figures=False, progress=False)
    write_fake_run(tmp_path / "ok", model="hf", model_args={"pretrained": "m"}, timestamp="2026-01-01T10-00-05.000001",
                   seed=0, tasks={"folio_lrm": _base_tasks()["folio_lrm"]})
    with pytest.raises(ReportError, match="--label elsewhere=...: 'elsewhere' is not one of the RUN_DIRs"):
        build_report([str(tmp_path / "ok")], tmp_path / "out", labels={"elsewhere": "x"}, figures=False, progress=False)


def test_cli_error_is_one_line(tmp_path, capsys):
    from lrm_backends.cli import main

    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrm: error: ") and "missing: no such file or folder" in err


@pytest.mark.parametrize("name, expected", [
    ("/m/DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf", ("bits", "gguf", None, 4.84, "deepseek-r1-distill-llama-8b")),
    ("DeepSeek-R1-Distill-Llama-8B-UD-Q2_K_XL.gguf", ("bits", "gguf", None, 3.35, "deepseek-r1-distill-llama-8b")),
    ("r1-8b-sparsegpt-50", ("sparsity", "sparsegpt", 0.5, None, "r1-8b")),
    ("r1-8b-wanda-2:4", ("sparsity", "wanda", 0.5, None, "r1-8b")),
    ("r1-8b_magnitude_0.7", ("sparsity", "magnitude", 0.7, None, "r1-8b")),
    ("AWQ_R1_Distill_Llama_8B", ("bits", "awq", None, 4.0, "r1-distill-llama-8b")),
    ("R1-8B-GPTQ-Int8", ("bits", "gptq", None, 8.0, "r1-8b")),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", (None, None, None, None, "deepseek-r1-distill-llama-8b")),
    ("R1-8B-BF16.gguf", (None, None, None, None, "r1-8b")),
    ("Qwen2.5-1.5B-Instruct", (None, None, None, None, "qwen2.5-1.5b-instruct")),
])
def test_compression_from_names(name, expected):
    c = from_name(name)
    assert (c.kind, c.method, c.sparsity, c.bits_per_weight, c.base) == expected


def test_compression_from_manifests_is_defensive():
    c = from_manifest({"method": "gguf", "source_model": "org/R1-8B", "quantization": {"type": "q5_k_m"}}, "x.gguf")
    assert (c.kind, c.quant_type, c.bits_per_weight, c.base) == ("bits", "Q5_K_M", 5.68, "r1-8b")
    c = from_manifest({"method": "wanda", "sparsity": {"target": 0.6}}, "/m/R1-8B-wanda")
    assert (c.kind, c.sparsity, c.base, c.pattern) == ("sparsity", 0.6, "r1-8b-wanda", "unstructured")
    assert from_manifest({"method": "gguf", "quantization": {"type": "F16"}}, "R1-8B-F16.gguf").kind is None
    assert from_manifest({"method": "sparsegpt"}, "m") is None and from_manifest([], "m") is None


def test_mann_whitney_matches_the_formula_and_scipy():
    x, y = [150, 120, 300, 1000], [800, 900, 1000, 950, 1000, 50]
    u, p = mann_whitney_u(x, y)
    # pairs x > y: 150>50, 120>50, 300>50, 1000>800,900,950,50 (4) + two ties (1 each half)
    assert u == 8.0
    assert p == pytest.approx(_normal_p(8.0, 4, 6, 24), rel=1e-12)  # 1000 three times: 27 - 3
    assert mann_whitney_u([], [1]) == (None, None) and mann_whitney_u([3, 3], [3]) == (1.0, 1.0)
    scipy_stats = pytest.importorskip("scipy.stats")
    for a, b in ((x, y), ([1, 2, 2, 3, 9], [2, 5, 7, 7, 8, 10, 11]), ([5.5], [1.0, 9.0, 9.0])):
        ref = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True)
        assert mann_whitney_u(a, b) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue, rel=1e-9))


def test_length_bins_keep_ties_together():
    assert length_bins([1000, 1000, 1000, 1000, 5], 4) == [3, 3, 3, 3, 0]


def test_sweep_cells_are_one_run_per_task_and_no_seed_note(tmp_path):
    """A sweep writes each task of one variant into its own folder with the same seed:
    that is one run of each task (Runs 1), and nothing was sampled twice (no "same
    seeds; pooled anyway" note). Two runs of one task with the same seeds still get it."""
    tasks = _base_tasks()
    args = {"pretrained": "/m/R1-Tiny-Q8_0.gguf"}
    for i, task in enumerate(("aime24_lrm", "folio_lrm")):
        write_fake_run(tmp_path / f"cell{i}", model="lrm-gguf", model_args=args,
                       timestamp=f"2026-01-0{i + 1}T10-00-05.000001", seed=0, tasks={task: tasks[task]})
    report = build_report([str(tmp_path / "cell0"), str(tmp_path / "cell1")], tmp_path / "out",
                          figures=False, progress=False)
    assert not any("same seeds" in n for n in report.tables.notes), report.tables.notes
    header, _, row = [line for line in report.markdown.splitlines() if line.startswith("|")][:3]
    assert header.split("|")[2].strip() == "Runs" and row.split("|")[2].strip() == "1", row
    assert "Reasoning avg" in header  # AIME and FOLIO
    # one reasoning task: no "Reasoning avg" column (or line) repeating it
    alone = build_report([str(tmp_path / "cell0")], tmp_path / "alone", figures=False, progress=False)
    assert "Reasoning avg" not in alone.markdown and "| AIME" in alone.markdown
    # the same task twice with the same seeds: pooled, and said
    write_fake_run(tmp_path / "again", model="lrm-gguf", model_args=args,
                   timestamp="2026-01-09T10-00-05.000001", seed=0, tasks={"aime24_lrm": tasks["aime24_lrm"]})
    report = build_report([str(tmp_path / d) for d in ("cell0", "cell1", "again")], tmp_path / "out2",
                          figures=False, progress=False)
    assert any("same seeds" in n and "aime24_lrm" in n for n in report.tables.notes), report.tables.notes
    row = [line for line in report.markdown.splitlines() if line.startswith("|")][2]
    assert row.split("|")[2].strip() == "2", row
