"""`unetpp train --cuda-graph`: every training step replayed from a CUDA graph, one graph per batch shape.

At the protocol's batch 16 a GPU step is bound by kernel launches, not by
arithmetic: on one H200 a bf16 UNet++ step took 18.3 ms eager and 9.4 ms as
one captured graph (U-Net 11.5 against 4.4 ms; the published GPU run's
`step_bench.json`). This captures the whole step (forward, loss, backward,
Adam, the pixel counts) once per batch shape (the full batches and the last,
short one) and replays it for every batch of that shape.

How it stays the same training:

- Capture needs Adam's state and the gradients to exist, so a few warm-up
  steps come first (on a side stream, as CUDA requires). They run on a
  snapshot: afterwards the weights, the batch-norm buffers, Adam's moments
  and step count (zeros where the warm-up created them: Adam's initial state)
  and the RNG states are written back into the same storage, which the graph
  reads. So every step of the training is a replay and none is a warm-up.
- Adam must be built with `capturable=True` (its step count on the GPU;
  `make_optimizer(..., capturable=True)`), for the whole run, resumes included.
- A replay overwrites the graph's outputs, so each step returns clones.

It is not bit-identical to an eager training: capturable Adam computes its
bias correction in fp32 on the GPU instead of in Python floats. Steps run
with autocast's weight cache off (a cached cast would outlive the capture).

`GraphCapture` is where CUDA comes in (`CudaGraphs`); tests give an eager
stand-in on the CPU, so the snapshot, warm-up and replay logic is tested
without a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from unetpp.errors import UnetppError
from unetpp.losses import supervised_loss
from unetpp.metrics import PixelCounts, counts_from_logits
from unetpp.training.checkpoint import rng_state, set_rng_state

WARMUP_STEPS = 3  # PyTorch's whole-network capture example warms up for 3 iterations on a side stream

StepOutputs = tuple[torch.Tensor, PixelCounts]


class GraphCapture(Protocol):
    """How steps are warmed up and captured: CUDA graphs, or an eager stand-in in tests."""

    def warm_up(self, body: Callable[[], StepOutputs], steps: int) -> None: ...

    def capture(self, body: Callable[[], StepOutputs]) -> tuple[Callable[[], None], StepOutputs]:
        """Record `body`; return (replay, the tensors each replay writes its outputs into)."""
        ...


class CudaGraphs:
    """`torch.cuda.CUDAGraph`, warmed up on a side stream, one private memory pool per graph."""

    def warm_up(self, body: Callable[[], StepOutputs], steps: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(steps):
                body()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, body: Callable[[], StepOutputs]) -> tuple[Callable[[], None], StepOutputs]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = body()
        return graph.replay, outputs


@dataclass
class _Captured:
    """One batch shape's graph: the inputs it reads, its replay, and the outputs it writes."""

    images: torch.Tensor
    masks: torch.Tensor
    replay: Callable[[], None]
    loss: torch.Tensor
    counts: PixelCounts


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast without its weight cache (cached casts would be allocated inside one capture only)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


class GraphedTrainStep:
    """`training.step.train_step` for one model and optimizer, each batch shape captured once, then replayed."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: str,
        capture: GraphCapture | None = None,
        warmup_steps: int = WARMUP_STEPS,
    ) -> None:
        self.backend = capture if capture is not None else CudaGraphs()
        if isinstance(self.backend, CudaGraphs) and not all(group.get("capturable") for group in optimizer.param_groups):
            raise UnetppError("--cuda-graph needs Adam built with capturable=True (make_optimizer(capturable=True))")
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.warmup_steps = warmup_steps
        self.graphs: dict[tuple[tuple[int, ...], tuple[int, ...]], _Captured] = {}

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> StepOutputs:
        """One optimizer step on a prepared batch: (loss, pixel counts of the deepest head), as `train_step`."""
        key = (tuple(images.shape), tuple(masks.shape))
        captured = self.graphs.get(key)
        if captured is None:
            captured = self.graphs[key] = self._capture(images, masks)
        captured.images.copy_(images)
        captured.masks.copy_(masks)
        captured.replay()
        return captured.loss.clone(), PixelCounts(*(t.clone() for t in (
            captured.counts.intersection, captured.counts.union, captured.counts.pred_sum, captured.counts.target_sum)))

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor a step changes in place: weights, buffers, Adam's state."""
        state = [t for per_param in self.optimizer.state.values() for t in per_param.values() if torch.is_tensor(t)]
        return [*self.model.parameters(), *self.model.buffers(), *state]

    def _capture(self, images: torch.Tensor, masks: torch.Tensor) -> _Captured:
        """Warm up on a snapshot, capture, then put the snapshot back into the same storage."""
        static_images = images.clone()  # keeps the batch's memory format
        static_masks = masks.clone()
        device = static_images.device

        def body() -> StepOutputs:
            # Captured, this only drops the gradients: backward then allocates them in the graph's own pool,
            # where every replay writes them again (PyTorch's whole-network capture recipe).
            self.optimizer.zero_grad(set_to_none=True)
            with _autocast(device, self.precision):
                heads = self.model.forward_heads(static_images)
            loss = supervised_loss(heads, static_masks)
            loss.backward()
            self.optimizer.step()
            return loss.detach(), counts_from_logits(heads[-1], static_masks)

        before = {id(t): t.detach().clone() for t in self._state_tensors()}
        rng = rng_state()
        try:
            self.backend.warm_up(body, self.warmup_steps)
            replay, (loss, counts) = self.backend.capture(body)
        except RuntimeError as exc:
            raise UnetppError(
                f"--cuda-graph: capturing the training step for batch shape {tuple(images.shape)} failed ({exc}); "
                f"train without --cuda-graph (eager steps)"
            ) from exc
        with torch.no_grad():
            for tensor in self._state_tensors():
                saved = before.get(id(tensor))
                if saved is None:
                    tensor.zero_()  # created by the warm-up: Adam's initial moments and step count are zeros
                else:
                    tensor.copy_(saved)
        set_rng_state(rng)
        return _Captured(static_images, static_masks, replay, loss, counts)
