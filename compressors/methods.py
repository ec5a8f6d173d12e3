"""The table of pruning methods: one row per method, read by everything that names one.

Standard library only (importing it loads no torch), so that the ``lrm compress``
parser, ``lrm-pruned``'s ``--model_args`` check, the pipeline, the manifest reader and
the report all read the method names, whether a method needs calibration data, its
knobs (name, type, default, check, help) and its help text from here.

Adding a pruning method is one module of pure tensor functions plus one row::

    # compressors/mymethod.py: the tensor functions, and an adapter class with
    # new_stats, prepare and prune (see orchestrate.PruningMethod)
    register(MethodSpec(
        name="mymethod",
        help="MyMethod (Author 2025): ...",
        needs_calibration=True,
        entry="compressors.mymethod:MyMethod",
        knobs=(Knob("alpha", float, 0.1, "what alpha does", check=positive_number),),
        title="MyMethod",
    ))

The ``lrm compress mymethod`` subcommand (with ``--alpha``), ``lrm-pruned``'s
``method=mymethod,alpha=...``, the manifest's ``settings.alpha`` and the report's
recognition of ``model-mymethod-50`` names follow from the row.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from compressors.calibration import DEFAULT_NUM_SAMPLES, DEFAULT_SEED, DEFAULT_SEQ_LEN, DEFAULT_SOURCE

# SparseGPT's knobs (arXiv 2301.00774): columns pruned together before the lazy update
# of the rest (section 3.2, B_s), and the dampening lambda as a fraction of the mean
# diagonal of H (paper: 1%). compressors.sparsegpt takes its defaults from here.
DEFAULT_BLOCKSIZE = 128
DEFAULT_PERCDAMP = 0.01
# The method name of a GGUF quantization in a manifest (not a pruning method).
GGUF_METHOD = "gguf"


def positive_integer(value: Any) -> str | None:
    """The problem with ``value`` as a count (``None`` when it is fine)."""
    return None if value >= 1 else "expected a positive integer"


def positive_number(value: Any) -> str | None:
    """The problem with ``value`` as a positive real (``None`` when it is fine)."""
    return None if value > 0 and not math.isnan(value) else "expected a positive number"


def _parse_sparsity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"sparsity {text!r} is not a number; pass a fraction in (0, 1), e.g. 0.5") from None
    if not 0.0 < value < 1.0:
        raise ValueError(
            f"sparsity {text} is outside (0, 1); pass the fraction of weights to zero, e.g. 0.5 for 50%"
        )
    return value


def _parse_pattern(text: str) -> str:
    from compressors.masks import parse_pattern  # standard library only

    n, m = parse_pattern(text)
    return f"{n}:{m}"


@dataclass(frozen=True)
class Knob:
    """One setting: its name (``--model_args`` key, manifest ``settings`` key; the CLI
    flag is ``--name-with-dashes``), type, default (``None``: unset), help, an example
    value for error messages, a check returning the problem with a typed value (or
    ``None``), and optionally a parser of command-line text with its own messages."""

    name: str
    type: type
    default: Any
    help: str
    example: Any = None
    check: Callable[[Any], str | None] | None = None
    parser: Callable[[str], Any] | None = None

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--calib-samples``."""
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """What is wrong with a typed ``value`` (``None``: nothing, or no value)."""
        if value is None or self.check is None:
            return None
        return self.check(value)

    def parse(self, text: str) -> Any:
        """Command-line text to a checked value; ``ValueError`` naming the problem."""
        if self.parser is not None:
            return self.parser(text)
        try:
            value = self.type(text)
        except ValueError:
            kind = "an integer" if self.type is int else "a number" if self.type is float else self.type.__name__
            raise ValueError(f"{text!r} is not {kind}") from None
        if (problem := self.problem(value)) is not None:
            raise ValueError(f"{text}: {problem}")
        return value


# What to prune to, for every method (a fraction, or N nonzeros in every M inputs).
TARGET_KNOBS: tuple[Knob, ...] = (
    Knob("sparsity", float, None, "fraction of weights to zero, in (0, 1); implied by --pattern",
         example=0.5, parser=_parse_sparsity),
    Knob("pattern", str, None, "N:M semi-structured sparsity: at most N nonzeros in every M consecutive "
         "input weights (2:4, 4:8)", example="2:4", parser=_parse_pattern),
)  # fmt: skip
# Where calibration windows come from, for methods that need calibration data.
CALIBRATION_KNOBS: tuple[Knob, ...] = (
    Knob("calib", str, DEFAULT_SOURCE, "a text file, c4, wikitext2, hf:DATASET[:CONFIG[:SPLIT[:FIELD]]], "
         "or task:NAME (the task's prompts)", example=DEFAULT_SOURCE),
    Knob("calib_samples", int, DEFAULT_NUM_SAMPLES, "windows to draw", example=DEFAULT_NUM_SAMPLES,
         check=positive_integer),
    Knob("calib_seqlen", int, DEFAULT_SEQ_LEN, "tokens per window", example=DEFAULT_SEQ_LEN,
         check=positive_integer),
    Knob("seed", int, DEFAULT_SEED, "seed for drawing windows", example=DEFAULT_SEED),
)  # fmt: skip


@dataclass(frozen=True)
class MethodSpec:
    """One pruning method: its name, help, whether it needs calibration data, its own
    knobs (``title`` names their group in ``--help``) and ``entry``, the
    ``"module:attribute"`` of its orchestration adapter (loaded on first use)."""

    name: str
    help: str
    needs_calibration: bool
    entry: str
    knobs: tuple[Knob, ...] = ()
    title: str = ""

    def load(self) -> Any:
        """The orchestration adapter (imports the method's module, hence torch)."""
        module, _, attribute = self.entry.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        return target() if isinstance(target, type) else target

    def knob(self, name: str) -> Knob | None:
        """This method's own knob ``name``, if it has one."""
        return next((k for k in self.knobs if k.name == name), None)


_TABLE: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a row (a method registered twice under one name is a mistake)."""
    if spec.name in _TABLE or spec.name == GGUF_METHOD:
        raise ValueError(f"pruning method {spec.name!r} is already registered")
    clash = {k.name for k in spec.knobs} & {k.name for k in (*TARGET_KNOBS, *CALIBRATION_KNOBS)}
    if clash:
        raise ValueError(f"pruning method {spec.name!r}: knobs {sorted(clash)} clash with the shared knobs")
    _TABLE[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a row (for tests that register one)."""
    _TABLE.pop(name, None)


def method_names() -> tuple[str, ...]:
    """The registered methods, in registration order."""
    return tuple(_TABLE)


def methods() -> Iterator[MethodSpec]:
    """The rows, in registration order."""
    return iter(tuple(_TABLE.values()))


def get_method(name: str) -> MethodSpec:
    """The row for ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown pruning method {name!r}; expected one of {sorted(_TABLE)}") from None


def method_knobs() -> tuple[Knob, ...]:
    """Every method's own knobs (first occurrence of a name), in registration order."""
    seen: dict[str, Knob] = {}
    for spec in _TABLE.values():
        for knob in spec.knobs:
            seen.setdefault(knob.name, knob)
    return tuple(seen.values())


def manifest_methods() -> tuple[str, ...]:
    """The ``method`` values a ``compression.json`` may hold."""
    return (*_TABLE, GGUF_METHOD)


def method_alternatives(separator: str = "|") -> str:
    """``sparsegpt|wanda|magnitude`` for messages."""
    return separator.join(_TABLE)


register(MethodSpec(
    name="sparsegpt",
    help="SparseGPT (Frantar & Alistarh 2023): OBS weight updates from calibration Hessians",
    needs_calibration=True,
    entry="compressors.sparsegpt:SparseGPTMethod",
    title="SparseGPT",
    knobs=(
        Knob("blocksize", int, DEFAULT_BLOCKSIZE, "columns pruned per block", example=DEFAULT_BLOCKSIZE,
             check=positive_integer),
        Knob("percdamp", float, DEFAULT_PERCDAMP, "Hessian dampening as a fraction of its mean diagonal",
             example=DEFAULT_PERCDAMP, check=positive_number),
    ),
))  # fmt: skip
register(MethodSpec(
    name="wanda",
    help="Wanda (Sun et al. 2024): |W| x input-activation norm, no weight update",
    needs_calibration=True,
    entry="compressors.wanda:WandaMethod",
))  # fmt: skip
register(MethodSpec(
    name="magnitude",
    help="magnitude pruning: smallest |W| per matrix, no data",
    needs_calibration=False,
    entry="compressors.magnitude:MagnitudeMethod",
))  # fmt: skip
