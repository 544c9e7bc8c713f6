"""``torch.compile`` for DiffMAViL: the transformer blocks compiled, the rest eager.

One place decides what is compiled and how; every command (``time``, ``profile``,
``pretrain``, ``finetune``, grids) goes through ``compile_components``.

- **What**: the ``forward`` of every transformer block of the chosen components
  (``audio_encoder``, ``video_encoder``, ``fusion``, ``audio_decoder``, ``video_decoder``),
  compiled in place with inductor. Blocks of one kind and width share their compiled
  graphs (regional compilation: one graph serves every layer), so compiling costs a few
  small graphs rather than one large graph per component, and the blocks hold nearly all
  of a step's work. Everything else stays eager: patchify, the masking draws, the
  per-sample randomness of ``diffmavil.rng``, embeddings and heads, the losses, and any
  hooks (profiler labels, input capture). Masks, timesteps and noise are therefore
  computed by the same eager code with or without compilation (bit-identical), and the
  float mask ratios of a curriculum never reach a compiled graph: a block sees tensors
  whose token counts are the integer keep/masked counts.
- **Shapes**: the token dimension of a block's inputs [B, N, D] is marked dynamic
  (``maybe_mark_dynamic``) before every call, so the first graph of a kind of block
  already serves every token count: one graph per kind of block and grad mode (plus one
  under ``no_grad``, e.g. evaluation) over a whole curriculum, where dynamo's automatic
  dynamic shapes compiled a static graph first and recompiled at the first new count.
  Other dimensions (the batch) use automatic dynamic shapes. ``CompileStats`` counts
  the graphs.
- **Never silent**: ``fullgraph=True`` (a graph break is an error, not a partial eager
  run) and dynamo's recompile limit raises instead of falling back to eager.
- **Checkpoints**: parameter names are unchanged (no ``_orig_mod.`` prefix): a state dict
  of a compiled model loads into an eager one; ``decompile`` restores eager execution.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

COMPILED_COMPONENTS: tuple[str, ...] = (
    "audio_encoder",
    "video_encoder",
    "fusion",
    "audio_decoder",
    "video_decoder",
)

# Compiled graphs are shared by every block of a kind, so one code object can hold several
# (widths x grad modes x static/dynamic): above dynamo's default of 8, below a storm.
RECOMPILE_LIMIT = 32
_EAGER_FORWARD = "_eager_forward"


@dataclass
class CompileStats:
    """Graphs compiled per kind of block and the seconds spent in the backend compiler.

    graphs: {block kind: dynamo graphs compiled (first compiles + recompiles)};
    seconds: {block kind: backend (inductor) compile seconds, forward and backward}.
    """

    graphs: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    _backends: dict[str, Callable] = field(default_factory=dict, repr=False)

    @property
    def total_graphs(self) -> int:
        return sum(self.graphs.values())

    @property
    def recompiles(self) -> int:
        """Graphs beyond the first of each kind of block."""
        return sum(max(0, n - 1) for n in self.graphs.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready: graphs and recompiles, compile seconds, graphs per kind of block."""
        return {
            "graphs": self.total_graphs,
            "recompiles": self.recompiles,
            "compile_seconds": round(self.total_seconds, 3),
            "graphs_by_block": dict(self.graphs),
        }

    def backend(self, name: str) -> Callable:
        """Inductor, counting the graphs of ``name`` and their compile seconds (one backend
        object per name, so that blocks of a kind share dynamo's cache entries)."""
        if name not in self._backends:

            def compile_graph(graph: torch.fx.GraphModule, example_inputs: list[Any]):
                from torch._inductor.compile_fx import compile_fx

                self.graphs[name] = self.graphs.get(name, 0) + 1
                start = time.perf_counter()
                try:
                    return compile_fx(graph, example_inputs)
                finally:
                    elapsed = time.perf_counter() - start
                    self.seconds[name] = self.seconds.get(name, 0.0) + elapsed

            self._backends[name] = compile_graph
            self.graphs.setdefault(name, 0)
        return self._backends[name]


def _never_silent() -> None:
    """Make dynamo raise where it would otherwise fall back to eager without telling."""
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)


def _dynamic_tokens(compiled: Callable) -> Callable:
    """``compiled`` with dimension 1 (tokens) of its tensor inputs [B, N, D] marked dynamic
    before each call, so that its first graph already serves every token count."""

    def forward(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            # sizes 0 and 1 are specialised by dynamo whatever the marking: leave them
            if isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[1] > 1:
                torch._dynamo.maybe_mark_dynamic(value, 1)
        return compiled(*args, **kwargs)

    return forward


def compile_module(
    module: nn.Module,
    name: str,
    stats: CompileStats | None = None,
    *,
    dynamic_tokens: bool = False,
):
    """Compile ``module.forward`` in place; its graphs count under ``name``. Hooks stay
    eager around the compiled forward; parameters keep their names. ``dynamic_tokens``:
    the token dimension of [B, N, D] inputs is symbolic from the first graph on."""
    stats = stats if stats is not None else CompileStats()
    _never_silent()
    forward = module.forward
    compiled = torch.compile(forward, backend=stats.backend(name), fullgraph=True, dynamic=None)
    module.forward = _dynamic_tokens(compiled) if dynamic_tokens else compiled
    module.__dict__[_EAGER_FORWARD] = forward
    return stats


def compile_components(
    model: nn.Module,
    components: Iterable[str] = COMPILED_COMPONENTS,
    stats: CompileStats | None = None,
) -> CompileStats:
    """Compile the blocks of ``model``'s components in place (see the module docstring);
    returns the stats that count graphs as they compile (lazily, at first calls)."""
    stats = stats if stats is not None else CompileStats()
    for name in components:
        component = getattr(model, name, None)
        blocks = getattr(component, "blocks", None)
        if not isinstance(blocks, nn.ModuleList):
            raise ValueError(f"compile: {type(model).__name__} has no component {name!r}")
        for block in blocks:
            width = next(block.parameters()).shape[-1]
            compile_module(block, f"{type(block).__name__}-{width}", stats, dynamic_tokens=True)
    return stats


def decompile(model: nn.Module) -> nn.Module:
    """Undo ``compile_components``/``compile_module`` on every submodule: eager again."""
    for module in model.modules():
        if _EAGER_FORWARD in module.__dict__:
            del module.__dict__[_EAGER_FORWARD]
            del module.__dict__["forward"]
    return model


def is_compiled(model: nn.Module) -> bool:
    """Whether any submodule of ``model`` runs compiled."""
    return any(_EAGER_FORWARD in m.__dict__ for m in model.modules())
