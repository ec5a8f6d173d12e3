"""lm-eval's own test suite with our import hook on and off: the outcomes must match.

lrm-bench hooks into lm-eval at import time (``lrm_bench_autoload.pth``). That hook must
change nothing lm-eval's own tests can see. This script fetches the sdist of the
installed lm-eval version from PyPI, runs its ``tests/`` offline twice
(``LRM_BENCH_AUTOLOAD=1`` and ``=0``) and fails when any test's outcome differs. Tests
that need the network fail or error identically both ways; only differences count.

    python .ci/lmeval_suite.py [--workdir DIR] [--files test_a.py,test_b.py]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

# Per run; the whole suite takes a few minutes on 2 cores.
RUN_TIMEOUT_S = 1500


def fetch_tests(workdir: Path) -> Path:
    version = metadata.version("lm-eval")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         f"lm-eval=={version}", "-d", str(workdir)],
        check=True,
    )
    (sdist,) = workdir.glob("lm_eval-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / f"lm_eval-{version}" / "tests"


def outcomes(tests: Path, files: list[str], autoload: str, xml: Path) -> dict[str, str]:
    env = {**os.environ, "LRM_BENCH_AUTOLOAD": autoload, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # Run from inside tests/ so that `import lm_eval` finds the installed package, not the sdist's.
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors", f"--junitxml={xml}", *(files or ["."])],
        cwd=tests, env=env, timeout=RUN_TIMEOUT_S, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    result: dict[str, str] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = next((k for k in ("error", "failure", "skipped") if k in kinds), "passed")
        result[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="where to unpack the sdist (default: a temporary folder)")
    ap.add_argument("--files", default="", help="comma-separated test files (default: all of tests/)")
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lmeval-suite-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tests = fetch_tests(workdir)
    files = [f for f in args.files.split(",") if f]
    runs = {}
    for autoload in ("1", "0"):
        start = time.perf_counter()
        runs[autoload] = outcomes(tests, files, autoload, workdir / f"junit-{autoload}.xml")
        print(f"lm-eval's suite, hook {'on' if autoload == '1' else 'off'}: {len(runs[autoload])} tests "
              f"in {time.perf_counter() - start:.0f} s")
    on, off = runs["1"], runs["0"]
    differ = sorted(t for t in on.keys() | off.keys() if on.get(t) != off.get(t))
    counts = {k: sum(v == k for v in on.values()) for k in ("passed", "failure", "error", "skipped")}
    if differ:
        print(f"lm-eval's own tests change outcome with lrm-bench's hook on ({len(differ)}):")
        for t in differ:
            print(f"  {t}: hook on {on.get(t, 'absent')}, hook off {off.get(t, 'absent')}")
        return 1
    print(f"identical outcomes with the hook on and off: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
