"""Walk a decoder-only model layer by layer and prune its linear layers.

The orchestration shared by every pruning method (the methods themselves are pure
tensor functions in :mod:`compressors.sparsegpt`, :mod:`compressors.wanda` and
:mod:`compressors.magnitude`, each with an adapter named by its row in
:mod:`compressors.methods`), following the sequential scheme of the SparseGPT
reference (IST-DASLab/sparsegpt ``llama.py``, ``llama_sequential``):

1. run the calibration windows through the model up to the first decoder layer and
   keep that layer's inputs (hidden states plus the keyword arguments the model passes
   to its layers: rotary embeddings, masks);
2. for each decoder layer: run the inputs through it with forward pre-hooks on its
   linear layers that accumulate each method's statistics (the Hessian ``2XX^T`` for
   SparseGPT, input norms for Wanda); prune every linear layer; run the inputs through
   the *pruned* layer to get the next layer's inputs. Each layer is therefore calibrated
   on the outputs of the already-pruned layers before it.

Only the linear layers inside the decoder layers are pruned: embeddings and ``lm_head``
(which share one tensor when embeddings are tied) are never touched.

Memory beyond the model: the hidden states of all calibration windows once (each
batch's layer output overwrites its input), the current layer's statistics and one
batch's activations. With ``device`` set to an accelerator while the model sits on the CPU,
one decoder layer at a time is moved to the accelerator.

Speed: linear layers that read the same tensor (q/k/v, gate/up) share one statistic;
in the calibration pass the layer's forward stops at its last linear layer, whose
output nobody needs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from compressors.masks import SparsityTarget, zero_fraction
from compressors.methods import get_method

logger = logging.getLogger(__name__)

# Calibration windows per forward call: enough tokens for efficient matrix products on
# a CPU (GEMMs with fewer than ~8k rows run well below peak on AVX-512), small enough
# that one batch's MLP activations stay in the tens of MB for a ~1B model.
DEFAULT_TOKENS_PER_BATCH = 8192


class PruningMethod(Protocol):
    """A pruning method as the orchestration sees it.

    For each group of linear layers that read the same input, the orchestration makes
    one statistic (``new_stats``), feeds it every calibration batch (``stats.add``),
    turns it into what pruning needs once (``prepare``), and prunes each member
    (``prune``).
    """

    def new_stats(self, columns: int, device: torch.device) -> Any:
        """A fresh accumulator with an ``add(inputs)`` method, or ``None``."""

    def prepare(self, stats: Any, config: PruneConfig) -> Any:
        """What ``prune`` needs from the accumulated statistic."""

    def prune(
        self, weight: torch.Tensor, prepared: Any, config: PruneConfig
    ) -> tuple[torch.Tensor, float | None]:
        """The pruned weight and, where the method has one, its error estimate."""


@dataclass(frozen=True)
class PruneConfig:
    """How to prune: method, target and the knobs of the shared orchestration.

    ``ignore`` holds regular expressions searched in full module names
    (``model.layers.3.mlp.down_proj``); matching linear layers stay dense.
    ``sequential=False`` calibrates every layer on the dense model's activations (one
    forward per layer instead of two; not what the papers do). ``knobs`` holds the
    method's own settings (SparseGPT's ``blocksize``, ``percdamp``: see
    :mod:`compressors.methods`); unset ones take the table's defaults.
    """

    method: str
    target: SparsityTarget
    knobs: Mapping[str, Any] = field(default_factory=dict)
    sequential: bool = True
    ignore: tuple[str, ...] = ()
    tokens_per_batch: int = DEFAULT_TOKENS_PER_BATCH
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        spec = get_method(self.method)
        for name, value in self.knobs.items():
            knob = spec.knob(name)
            if knob is None:
                own = ", ".join(k.name for k in spec.knobs) or "none"
                raise ValueError(f"{self.method} has no setting {name!r} (its settings: {own})")
            if (problem := knob.problem(value)) is not None:
                raise ValueError(f"{name} {value}: {problem}, e.g. {knob.example}")

    def knob(self, name: str) -> Any:
        """The method's setting ``name``: as given, else the table's default."""
        value = self.knobs.get(name)
        if value is not None:
            return value
        knob = get_method(self.method).knob(name)
        if knob is None:
            raise KeyError(f"{self.method} has no setting {name!r}")
        return knob.default


@dataclass(frozen=True)
class ModuleReport:
    """What happened to one linear layer."""

    name: str
    shape: tuple[int, int]
    sparsity: float
    loss: float | None


@dataclass
class PruneReport:
    """Per-module results and where the time went (seconds per phase)."""

    method: str
    target: SparsityTarget
    modules: list[ModuleReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def achieved(self) -> float:
        """Zero fraction over all pruned linear layers (weighted by size)."""
        total = sum(m.shape[0] * m.shape[1] for m in self.modules)
        zeros = sum(m.sparsity * m.shape[0] * m.shape[1] for m in self.modules)
        return zeros / total if total else 0.0


class _StopForward(Exception):
    """Raised from a hook to end a forward pass early."""


def find_decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The ``nn.ModuleList`` of decoder layers and its dotted name.

    Found as the first module list with ``num_hidden_layers`` entries (Llama, Qwen2,
    Mistral, ...: ``model.layers``).
    """
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    count = getattr(config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if count is None or len(module) == count:
                return name, module
    raise ValueError(
        f"could not find the decoder layers of {type(model).__name__}: no nn.ModuleList "
        f"with num_hidden_layers={count} entries; pruning supports decoder-only "
        "transformers such as the Llama and Qwen2 families"
    )


def target_linears(layer: nn.Module, prefix: str, ignore: tuple[str, ...]) -> dict[str, nn.Linear]:
    """The linear layers of one decoder layer to prune, by full name."""
    patterns = [re.compile(p) for p in ignore]
    found: dict[str, nn.Linear] = {}
    for name, module in layer.named_modules():
        if isinstance(module, nn.Linear):
            full = f"{prefix}.{name}"
            if any(p.search(full) for p in patterns):
                logger.debug("keeping %s dense (ignored)", full)
                continue
            found[full] = module
    return found


def _parent_of(model: nn.Module, dotted: str) -> nn.Module:
    parent_name = dotted.rpartition(".")[0]
    return model.get_submodule(parent_name) if parent_name else model


def _first_param_device(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def _same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` are the same device when 0 is the current one."""
    if a.type != b.type:
        return False
    if a.type == "cuda" and (a.index is None or b.index is None):
        current = torch.cuda.current_device()
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index


def _batches(total: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, total)) for i in range(0, total, size)]


def _layer_output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


class _Calibrator:
    """Forward pre-hooks that feed each target's inputs to its method's statistics,
    sharing one statistic between modules that read the same tensor."""

    def __init__(self, method: PruningMethod, targets: dict[str, nn.Linear], device: torch.device) -> None:
        self.method = method
        self.device = device
        self.owner: dict[str, str] = {}
        self.stats: dict[str, Any] = {}
        self.order: list[str] = []
        self.first_batch = True
        self.stop_at: str | None = None
        self._last: tuple[torch.Tensor | None, str | None] = (None, None)
        self._handles = [
            module.register_forward_pre_hook(self._hook_for(name)) for name, module in targets.items()
        ]

    def _hook_for(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            last_x, last_owner = self._last
            if self.first_batch:
                self.order.append(name)
                if last_x is x and last_owner is not None:
                    self.owner[name] = last_owner
                else:
                    self.owner[name] = name
                    self.stats[name] = self.method.new_stats(x.shape[-1], self.device)
            owner = self.owner[name]
            if owner == name:
                self.stats[name].add(x.detach())
            elif last_x is not x:
                raise RuntimeError(
                    f"{name} shared its input with {owner} on the first calibration batch "
                    "but not on a later one; this model's layers are not deterministic"
                )
            self._last = (x, owner)
            if name == self.stop_at:
                raise _StopForward

        return hook

    def end_batch(self) -> None:
        self._last = (None, None)
        self.first_batch = False

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._last = (None, None)

    def members(self, owner: str) -> list[str]:
        return [n for n, o in self.owner.items() if o == owner]


class LayerwisePruner:
    """Runs :func:`prune_model`; one instance per call."""

    def __init__(self, model: nn.Module, config: PruneConfig) -> None:
        self.model = model
        self.config = config
        self.spec = get_method(config.method)
        self.method: PruningMethod = self.spec.load()
        self.layers_name, self.layers = find_decoder_layers(model)
        self.home = _first_param_device(self.layers[0])
        self.device = torch.device(config.device) if config.device else self.home
        self.offload = not _same_device(self.device, self.home)
        self.timings: dict[str, float] = {"capture": 0.0, "calibrate": 0.0, "prune": 0.0, "propagate": 0.0}

    def _tick(self, phase: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[phase] += now - start
        return now

    def capture_inputs(
        self, input_ids: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """Hidden states entering the first decoder layer, and its keyword arguments per batch."""
        parent = _parent_of(self.model, self.layers_name)
        moved: list[nn.Module] = []
        if self.offload:
            # Only the modules before the first layer run (embeddings, rotary tables).
            for child in parent.children():
                if child is not self.layers:
                    child.to(self.device)
                    moved.append(child)
        total = input_ids.shape[0]
        store: list[torch.Tensor] = []  # one [total, seq, hidden] buffer, made on first sight
        kwargs_per_batch: list[dict[str, Any]] = []
        current = slice(0, 0)

        def grab(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hidden = args[0] if args else kwargs.pop("hidden_states")
            if not store:
                store.append(hidden.new_empty((total, *hidden.shape[1:])))
            store[0][current] = hidden
            kwargs_per_batch.append(dict(kwargs))
            raise _StopForward

        handle = self.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            for current in _batches(total, batch):
                try:
                    self.model(input_ids=input_ids[current].to(self.device), use_cache=False)
                except _StopForward:
                    pass
        finally:
            handle.remove()
            for child in moved:
                child.to(self.home)
        if not store or len(kwargs_per_batch) != len(_batches(total, batch)):
            raise RuntimeError("the model did not reach its first decoder layer")
        return store[0], kwargs_per_batch

    def _run_layer(
        self,
        layer: nn.Module,
        hidden: torch.Tensor,
        kwargs: list[dict[str, Any]],
        rows: list[slice],
        write_back: bool,
        calibrator: _Calibrator | None = None,
    ) -> None:
        """Run ``hidden`` through ``layer`` batch by batch; with ``write_back`` each
        batch's output replaces its input in place (a batch's input is not needed once its
        output exists, so no second buffer of hidden states is kept)."""
        for b, sl in enumerate(rows):
            try:
                out = layer(hidden[sl], **kwargs[b])
                if write_back:
                    hidden[sl] = _layer_output(out)
            except _StopForward:
                pass
            if calibrator is not None:
                if calibrator.first_batch and not write_back and calibrator.order:
                    # Nobody needs the output of the last linear layer: later batches stop
                    # there (saves the down projection, a quarter of a Llama MLP's work).
                    calibrator.stop_at = calibrator.order[-1]
                calibrator.end_batch()

    def run(self, input_ids: torch.Tensor | None) -> PruneReport:
        cfg = self.config
        report = PruneReport(method=cfg.method, target=cfg.target)
        needs_data = self.spec.needs_calibration
        hidden = None
        kwargs: list[dict[str, Any]] = []
        rows: list[slice] = []
        start = time.perf_counter()
        if needs_data:
            if input_ids is None:
                raise ValueError(f"{cfg.method} needs calibration data; pass input_ids")
            batch = max(1, cfg.tokens_per_batch // input_ids.shape[1])
            hidden, kwargs = self.capture_inputs(input_ids, batch)
            rows = _batches(hidden.shape[0], batch)
        start = self._tick("capture", start)

        bar = _Progress(self.layers, cfg.progress, f"{cfg.method} {cfg.target.pattern or cfg.target.sparsity}")
        for index, layer in bar:
            prefix = f"{self.layers_name}.{index}"
            if self.offload:
                layer.to(self.device)
            targets = target_linears(layer, prefix, cfg.ignore)
            calibrator = None
            if needs_data and targets:
                calibrator = _Calibrator(self.method, targets, self.device)
                try:
                    # Not sequential: the dense outputs of this pass feed the next layer.
                    self._run_layer(layer, hidden, kwargs, rows, not cfg.sequential, calibrator)
                finally:
                    calibrator.remove()
            start = self._tick("calibrate", start)

            layer_losses = []
            prepared: dict[str, Any] = {}
            for name, module in targets.items():
                owner = name
                if calibrator is not None:
                    if name not in calibrator.owner:
                        raise RuntimeError(
                            f"{name} was never called in the calibration forward pass; exclude it with ignore"
                        )
                    owner = calibrator.owner[name]
                    if owner not in prepared:
                        prepared[owner] = self.method.prepare(calibrator.stats.pop(owner), cfg)
                weight, loss = self.method.prune(module.weight.data, prepared.get(owner), cfg)
                module.weight.data.copy_(weight)
                del weight
                if calibrator is not None and name == calibrator.members(owner)[-1]:
                    del prepared[owner]  # free the inverse Hessian once its group is done
                report.modules.append(
                    ModuleReport(name, tuple(module.weight.shape), zero_fraction(module.weight.data), loss)
                )
                if loss is not None:
                    layer_losses.append(loss)
            start = self._tick("prune", start)

            if needs_data and (cfg.sequential or calibrator is None):
                self._run_layer(layer, hidden, kwargs, rows, True)  # through the pruned layer
                start = self._tick("propagate", start)
            if self.offload:
                layer.to(self.home)
            if layer_losses:
                bar.set_postfix(loss=f"{sum(layer_losses):.3g}")
            logger.debug(
                "%s pruned: %s",
                prefix,
                ", ".join(
                    f"{m.name.rsplit('.', 1)[-1]}={m.sparsity:.3f}" for m in report.modules[-len(targets) :]
                ),
            )
        report.timings = dict(self.timings)
        return report


class _Progress:
    def __init__(self, layers: nn.ModuleList, enabled: bool, desc: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=len(layers), desc=desc, unit="layer", disable=not enabled)
        self._layers = layers

    def __iter__(self) -> Iterator[tuple[int, nn.Module]]:
        try:
            for index, layer in enumerate(self._layers):
                yield index, layer
                self._bar.update(1)
        finally:
            self._bar.close()

    def set_postfix(self, **kwargs: str) -> None:
        self._bar.set_postfix(**kwargs)


@contextmanager
def _exact_float32_matmul() -> Iterator[None]:
    """No TF32 while pruning: Hessians are float32 sums of products whose small
    eigenvalues matter (the reference, IST-DASLab/sparsegpt, switches TF32 off too)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


@torch.no_grad()
def prune_model(model: nn.Module, input_ids: torch.Tensor | None, config: PruneConfig) -> PruneReport:
    """Prune ``model``'s decoder-layer linear layers in place.

    ``input_ids`` (``[num_samples, seq_len]``, see :mod:`compressors.calibration`) is
    required by methods that need calibration (SparseGPT, Wanda) and ignored by
    magnitude pruning.
    """
    was_training = model.training
    model.eval()
    try:
        with _exact_float32_matmul():
            return LayerwisePruner(model, config).run(input_ids)
    finally:
        model.train(was_training)
