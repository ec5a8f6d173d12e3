"""The cells of a sweep: compress once per base x compression, evaluate every variant on
every task. Each cell is the ``lrm`` command it runs (``lrm compress ...`` or
``lrm eval ...``), and its id is a hash of its full configuration (never its position),
so a changed spec keeps the ids, folders and results of every cell it did not change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrm_backends.sweep.spec import (
    GGUF, GGUF_BACKEND, HF_FOLDER_BACKENDS, NONE, PRUNED_FALLBACK_BACKEND, CompressionSpec, ModelSpec, Resources,
    SweepSpec,
)  # fmt: skip

COMPRESS, EVALUATE = "compress", "evaluate"
CELLS_DIR = "cells"
REPORT_DIR = "report"
DONE_FILE = "done.json"  # written last, when the cell's command exited 0
CELL_FILE = "cell.json"  # the cell's configuration and command, written before it runs
LOG_FILE = "log.txt"
EVAL_OUTPUT = "lm_eval"  # lm-eval's --output_path inside an evaluation cell
EVAL_CACHE = "cache"  # lrm eval's --cache inside an evaluation cell (resume per cell)
# Ten hex digits of SHA-256: a collision among a sweep's few thousand cells is ~1e-6.
ID_HEX = 10
# Bump when what a configuration means changes, so old cells are not taken as done.
PLAN_FORMAT = 1


@dataclass
class Cell:
    """One unit of work: its id, what it is, the ``lrm`` argv it runs and its folder."""

    id: str
    kind: str
    model: str
    compression: str
    task: str | None
    config: dict[str, Any]
    argv: list[str]
    dir: Path
    resources: Resources
    depends_on: str | None = None
    label: str = ""  # the model name the report shows (evaluation cells)
    artifact: Path | None = None  # the compressed checkpoint (compression cells)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return (self.dir / DONE_FILE).is_file()

    def describe(self) -> dict[str, Any]:
        """The cell as ``--dry-run --json`` prints it."""
        return {
            "id": self.id, "kind": self.kind, "model": self.model, "compression": self.compression,
            "task": self.task, "done": self.done, "resources": self.resources.as_dict(),
            "depends_on": self.depends_on, "dir": str(self.dir), "command": ["lrm", *self.argv],
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """What a worker needs to run the cell (plain JSON: it travels to Ray workers)."""
        return {**self.describe(), "argv": self.argv, "config": self.config,
                "artifact": str(self.artifact) if self.artifact else None}  # fmt: skip


@dataclass
class Plan:
    spec: SweepSpec
    cells: list[Cell]

    def get(self, cell_id: str) -> Cell:
        return next(c for c in self.cells if c.id == cell_id)

    def evaluations(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == EVALUATE]

    def to_json(self) -> dict[str, Any]:
        return {"spec": str(self.spec.path), "output": str(self.spec.output),
                "cells": [c.describe() for c in self.cells]}  # fmt: skip


def config_hash(config: dict[str, Any]) -> str:
    """Stable hash of a JSON-able configuration (key order does not matter).

    >>> config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    True
    """
    text = json.dumps({"format": PLAN_FORMAT, **config}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_HEX]


def _args_text(args: dict[str, Any]) -> str:
    """lm-eval's ``key=value,key=value`` (booleans as True/False, which it parses)."""
    return ",".join(f"{k}={v}" for k, v in args.items())


def _compress_argv(model: ModelSpec, comp: CompressionSpec, out: Path, gpus: float) -> list[str]:
    if comp.method == GGUF:
        argv = ["compress", GGUF, "--model", model.pretrained, "--type", str(comp.qtype), "--out", str(out),
                "--overwrite"]  # fmt: skip
        options = dict(comp.options)
        if options.get("imatrix"):
            argv += ["--imatrix", str(options["imatrix"])]
        if options.get("allow_requantize"):
            argv += ["--allow-requantize"]
        return argv
    argv = ["compress", comp.method, "--model", model.pretrained, "--out", str(out), "--overwrite", "--no-progress"]
    argv += ["--pattern", comp.pattern] if comp.pattern else ["--sparsity", repr(comp.sparsity)]
    for key, value in comp.options:
        if key == "ignore":
            for regex in value:
                argv += ["--ignore", regex]
        elif key == "sequential":
            argv += [] if value else ["--no-sequential"]
        else:
            argv += ["--" + key.replace("_", "-"), str(value)]
    if model.revision:
        argv += ["--revision", model.revision]
    if gpus:
        argv += ["--device", "cuda"]  # the GPU Ray assigned (CUDA_VISIBLE_DEVICES)
    return argv


def _eval_backend(model: ModelSpec, comp: CompressionSpec) -> tuple[str, dict[str, Any]]:
    """The backend and model_args (without ``pretrained``) that evaluate ``comp`` of ``model``."""
    if comp.method == NONE:
        return model.backend, dict(model.model_args)
    if comp.method == GGUF:
        return GGUF_BACKEND, dict(model.model_args) if model.backend == GGUF_BACKEND else {}
    if model.backend in HF_FOLDER_BACKENDS:
        return model.backend, dict(model.model_args)
    return PRUNED_FALLBACK_BACKEND, {}  # e.g. a dequantized GGUF base: lm-eval's hf under lrm-pruned


def _eval_argv(spec: SweepSpec, backend: str, pretrained: str, args: dict[str, Any], task: str,
               cell_dir: Path) -> list[str]:  # fmt: skip
    argv = ["eval", "--model", backend, "--model_args", _args_text({"pretrained": pretrained, **args}),
            "--tasks", task, "--output_path", str(cell_dir / EVAL_OUTPUT), "--cache", str(cell_dir / EVAL_CACHE),
            "--log_samples"]  # fmt: skip
    if spec.limit is not None:
        argv += ["--limit", str(spec.limit)]
    if spec.gen_kwargs:
        argv += ["--gen_kwargs", _args_text(spec.gen_kwargs)]
    if spec.apply_chat_template:
        argv += ["--apply_chat_template"]
    if spec.repeats is not None:
        argv += ["--repeats", str(spec.repeats)]
    if spec.seed is not None:
        argv += ["--seed", str(spec.seed)]
    if spec.batch_size is not None:
        argv += ["--batch_size", str(spec.batch_size)]
    return argv


def make_plan(spec: SweepSpec) -> Plan:
    """Expand ``spec`` into cells, compression cells before the evaluations that need them."""
    root = spec.output / CELLS_DIR
    res = spec.resources
    compress_res, eval_res = res.get(COMPRESS, Resources()), res.get(EVALUATE, Resources())
    compress_cells: list[Cell] = []
    eval_cells: list[Cell] = []
    for model in spec.models:
        for comp in spec.compressions:
            tasks = [t for t in spec.tasks if not spec.excluded(model.name, comp.label, t)]
            if not tasks:
                continue
            label = model.name if comp.method == NONE else f"{model.name}-{comp.slug}"
            base_config = {"name": model.name, "pretrained": model.pretrained, "revision": model.revision}
            source: dict[str, Any]
            parent = None
            if comp.method == NONE:
                pretrained, source = model.pretrained, {"base": base_config}
            else:
                config = {"kind": COMPRESS, "base": base_config, "compression": comp.config()}
                cid = f"{label}.{config_hash(config)}"
                out = root / cid / ("model.gguf" if comp.method == GGUF else "model")
                parent = Cell(cid, COMPRESS, model.name, comp.label, None, config,
                              _compress_argv(model, comp, out, compress_res.num_gpus), root / cid, compress_res,
                              label=label, artifact=out)  # fmt: skip
                compress_cells.append(parent)
                pretrained, source = str(out), {"compressed": cid}
            backend, args = _eval_backend(model, comp)
            for task in tasks:
                config = {
                    "kind": EVALUATE, "model": source, "backend": backend, "model_args": args, "task": task,
                    "repeats": spec.repeats, "limit": spec.limit, "gen_kwargs": spec.gen_kwargs,
                    "apply_chat_template": spec.apply_chat_template, "seed": spec.seed,
                }  # fmt: skip
                if spec.batch_size is not None:  # in the id only when set: older sweeps keep theirs
                    config["batch_size"] = spec.batch_size
                eid = f"{label}.{task}.{config_hash(config)}"
                cell_dir = root / eid
                eval_cells.append(Cell(eid, EVALUATE, model.name, comp.label, task, config,
                                       _eval_argv(spec, backend, pretrained, args, task, cell_dir), cell_dir,
                                       eval_res, depends_on=parent.id if parent else None, label=label))  # fmt: skip
    return Plan(spec, [*compress_cells, *eval_cells])
