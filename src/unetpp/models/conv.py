"""A 3x3 convolution that trains in the memory layout this CPU is fast at.

`unetpp train` keeps models and batches in channels_last, the layout bf16
and GPU kernels want. On AVX2 CPUs without native bf16, training runs in
fp32, and there PyTorch's oneDNN build is slower in channels_last than in
NCHW: its channels_last weight-gradient kernel (jit:avx2 on `acdb`) took
up to 2-4x longer per layer, and a whole fp32 training step (batch 16,
96x96, measured interleaved with `unetpp bench-train --also
channels_last_native` on a shared 2-core AMD EPYC) took 8-24% longer in
channels_last than in NCHW on 1 thread, and -1% to +10% longer on 2
threads (U-Net +9%). So `Conv3x3` (conv_layout="auto") computes in NCHW
there: it hands conv2d an NCHW view of its input and weight. The next
layers then see NCHW activations, so only the image and the weights are
converted, once per forward. The function is unchanged (same convolution,
same summation) and so are the parameters: it is an `nn.Conv2d`, so
state_dicts are interchangeable; conv_layout="native" is plain nn.Conv2d.
"""

from __future__ import annotations

import torch
from torch import nn

CONV_LAYOUTS = ("auto", "native")
# CPU capabilities on which NCHW was measured faster for fp32 training (see the module docstring).
NCHW_TRAINING_CAPABILITIES = ("AVX2",)


def nchw_training_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True for fp32 training (autograd on, no autocast) on a CPU where NCHW was measured faster."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.dim() == 4
        and torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.cpu.get_cpu_capability() in NCHW_TRAINING_CAPABILITIES
    )


class Conv3x3(nn.Conv2d):
    """nn.Conv2d(in, out, 3, padding=1) that may compute in a faster memory layout.

    conv_layout="native" is plain nn.Conv2d (the output follows the input's
    and weight's layout). conv_layout="auto" (the default) computes in NCHW
    where `nchw_training_applies`, else like native.
    """

    def __init__(self, in_channels: int, out_channels: int, conv_layout: str = "auto") -> None:
        if conv_layout not in CONV_LAYOUTS:
            from unetpp.models.blocks import ModelError

            raise ModelError(f"conv_layout {conv_layout!r} is not supported; choose one of {', '.join(CONV_LAYOUTS)}")
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv_layout = conv_layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_layout == "auto" and nchw_training_applies(x, self.weight):
            return self._conv_forward(x.contiguous(), self.weight.contiguous(), self.bias)
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", conv_layout={self.conv_layout}"
