"""What one training or validation batch does, in one function each.

`unetpp train` and the training benchmark call exactly these, so a speed-up
measured by the benchmark is a speed-up of the real stage.
"""

from __future__ import annotations

import torch

from unetpp.losses import bce_dice_loss, supervised_loss
from unetpp.metrics import PixelCounts, counts_from_logits
from unetpp.models import NestedUNet, UNet
from unetpp.training.device import autocast

# The memory format of every model input as `to_model_input` makes it, and of every model loaded for
# inference (`inference.loading`), so inference inputs need no copy. Training converts its batches to
# the layout `training/layout.py` chose (`make_batch`); this is the one place the inference layout is set.
INPUT_MEMORY_FORMAT = torch.channels_last


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,S,S,3) -> float (N,3,S,S) in [0,1], INPUT_MEMORY_FORMAT: the one input scaling, shared with inference.

    Permuting NHWC to NCHW gives channels_last strides for free; `.float()`
    keeps them, so the input matches the model's memory format without a copy.
    """
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=INPUT_MEMORY_FORMAT)


def make_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    index: torch.Tensor,
    layout: torch.memory_format = INPUT_MEMORY_FORMAT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N,S,S,3) / (N,S,S) rows `index` -> float images /255 in `layout` and 0/1 float masks (N,1,S,S).

    The input's layout decides the convolutions' layout, so it must match the model's (training/layout.py).
    """
    return to_model_input(images[index]).contiguous(memory_format=layout), masks[index].unsqueeze(1).float()


def train_step(
    model: UNet | NestedUNet,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    precision: str,
) -> tuple[torch.Tensor, PixelCounts]:
    """One optimizer step on a prepared batch: (detached loss, pixel counts of the deepest head).

    The loss is the mean over every head (deep supervision; one head for the
    others). The forward pass runs under autocast when `precision == "bf16"`;
    the loss is computed outside it, in fp32 (losses.py casts the logits).
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, precision):
        heads = model.forward_heads(images)
    loss = supervised_loss(heads, masks)
    loss.backward()
    optimizer.step()
    return loss.detach(), counts_from_logits(heads[-1], masks)


@torch.no_grad()
def eval_step(
    model: UNet | NestedUNet, images: torch.Tensor, masks: torch.Tensor, precision: str
) -> tuple[torch.Tensor, PixelCounts]:
    """Loss and pixel counts of the deepest head on one validation batch; the caller puts the model in eval mode."""
    with autocast(images.device, precision):
        logits = model(images)
    return bce_dice_loss(logits, masks), counts_from_logits(logits, masks)
