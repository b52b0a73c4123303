"""A 3x3 convolution whose CPU weight gradient is computed in the layout oneDNN is fast at.

On AVX2 CPUs, PyTorch's oneDNN build computes the weight gradient of a
channels_last (NHWC) convolution with a slow kernel (jit:avx2 on `acdb`):
measured here it took 2-4x longer than the same gradient from NCHW tensors,
and about 60% of a UNet++ fp32 training step is convolution backward. The
forward and the input gradient are fast in channels_last (brgemm kernels).
`Conv3x3` keeps both of those and takes the weight/bias gradient from NCHW
copies of the input and of the output gradient. The copies are transposes,
slow on large maps: per layer (UNet++ shapes, batch 16, 1 and 2 threads) the
split won 1.1-1.5x on maps of 24x24 and smaller and lost up to 2x on 96x96
ones, so it is used only up to `SPLIT_BACKWARD_MAX_PIXELS`. The function and
its gradients are the same (only the summation order differs), and so are
the parameters: it is an `nn.Conv2d`, so state_dicts are interchangeable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

CONV_BACKWARDS = ("auto", "native")
# CPU capabilities on which the split backward was measured to be faster (see the module docstring).
SPLIT_BACKWARD_CAPABILITIES = ("AVX2",)
SPLIT_BACKWARD_MAX_PIXELS = 24 * 24  # larger maps: the NHWC->NCHW copies cost more than the split saves

_convolution_backward = torch.ops.aten.convolution_backward


def _backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, mask: list[bool]) -> Any:
    return _convolution_backward(
        grad, x, weight, [weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
    )


class _SplitLayoutConv3x3(torch.autograd.Function):
    """conv2d(x, weight, bias, padding=1); input gradient in channels_last, weight gradient in NCHW."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return nn.functional.conv2d(x, weight, bias, padding=1)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_cl = grad.contiguous(memory_format=torch.channels_last)
            grad_x = _backward(grad_cl, x, weight, [True, False, False])[0]
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = _backward(grad.contiguous(), x.contiguous(), weight.contiguous(), [False, True, True])
            grad_w = torch.empty_like(weight).copy_(grad_w)  # the parameter's own layout
        return grad_x, grad_w, grad_b


def split_backward_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True where the split backward is both valid and measured faster: CPU, fp32, NHWC, small maps, autograd on."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.is_grad_enabled()
        and (x.requires_grad or weight.requires_grad)
        and not torch.is_autocast_enabled("cpu")
        and x.dim() == 4
        and x.shape[-2] * x.shape[-1] <= SPLIT_BACKWARD_MAX_PIXELS
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
        and torch.backends.cpu.get_cpu_capability() in SPLIT_BACKWARD_CAPABILITIES
    )


class Conv3x3(nn.Conv2d):
    """nn.Conv2d(in, out, 3, padding=1) with a selectable backward implementation.

    backward="native" is plain nn.Conv2d. backward="auto" (the default) uses
    the split-layout backward where `split_backward_applies`, else native.
    """

    def __init__(self, in_channels: int, out_channels: int, backward: str = "auto") -> None:
        if backward not in CONV_BACKWARDS:
            from unetpp.models.blocks import ModelError

            raise ModelError(f"conv_backward {backward!r} is not supported; choose one of {', '.join(CONV_BACKWARDS)}")
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)
        self.backward_impl = backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backward_impl == "auto" and self.bias is not None and split_backward_applies(x, self.weight):
            return _SplitLayoutConv3x3.apply(x, self.weight, self.bias)
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", backward={self.backward_impl}"
