"""`unetpp train`'s optimizer: Adam, with the authors' L2 penalty mapped onto it for `--block authors`.

Keras' `kernel_regularizer=l2(1e-4)` adds 1e-4 x sum(w^2) of each
regularised kernel to the loss, whose gradient is 2e-4 x w. Adam's
`weight_decay` adds exactly `weight_decay * w` to the gradient before its
moments are taken (coupled L2, not AdamW's decoupled decay), so
weight_decay = 2e-4 on a parameter group holding those kernels gives the
same update as Keras' penalised loss. The group holds what Keras
regularises (`models.blocks.l2_kernels`: the units' 3x3 and the heads'
1x1 kernels), the other parameters train without decay. The loss value
recorded in history.csv stays the reference's (no penalty in it), so the
block is the only change to the protocol.
"""

from __future__ import annotations

import torch
from torch import nn

from unetpp.models import l2_kernels

AUTHORS_L2 = 1e-4  # the authors' l2(1e-4): the penalty is AUTHORS_L2 * sum(w^2)
L2_WEIGHT_DECAY = 2 * AUTHORS_L2  # its gradient, 2 * AUTHORS_L2 * w, as Adam's coupled weight_decay


def make_optimizer(model: nn.Module, lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam at `lr`; the model's `l2_kernels` (none for the vgg block) in a group with the L2 as weight decay.

    Without such kernels this is `Adam(model.parameters(), lr)` itself, one
    group, as the reference protocol (and its recorded digests) had it.
    `capturable` keeps Adam's step count on the GPU, which a CUDA graph of the
    step needs (`training/cuda_graph.py`).
    """
    kernels = l2_kernels(model)
    if not kernels:
        return torch.optim.Adam(model.parameters(), lr=lr, capturable=capturable)
    penalised = {id(k) for k in kernels}
    rest = [p for p in model.parameters() if id(p) not in penalised]
    return torch.optim.Adam(
        [{"params": kernels, "weight_decay": L2_WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}], lr=lr,
        capturable=capturable,
    )
