"""Building blocks shared by every architecture: the unit of each node (`--block`) and its upsampling."""

from __future__ import annotations

import math

import torch
from torch import nn

from unetpp.choices import BLOCKS, DEFAULT_FILTERS
from unetpp.errors import ModelError
from unetpp.models.dropout import HalfDropout

UPSAMPLE_MODES = ("bilinear", "nearest", "bicubic")


class VGGBlock(nn.Sequential):
    """conv3x3-BN-ReLU-conv3x3-BN-ReLU, the unit of both U-Net and UNet++.

    A Sequential (rather than a custom forward) keeps the state_dict flat and
    lets fusion passes see the plain conv/BN/ReLU chain. Memory layout is the
    caller's choice (training/layout.py), not the block's.
    """

    def __init__(self, in_channels: int, middle_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, middle_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(middle_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(middle_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class HeConv2d(nn.Conv2d):
    """A convolution of the authors' Keras code: He-normal kernel, zero bias, and an L2 penalty (`l2_kernels`).

    Keras 2.0-2.2 (the authors' code calls `Model(input=..., output=...)`)
    draws he_normal from a normal truncated at two standard deviations, with
    standard deviation sqrt(2 / fan_in) before truncation; the class marks
    the kernels `kernel_regularizer=l2(1e-4)` applies to.
    """

    def reset_parameters(self) -> None:
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        std = math.sqrt(2.0 / fan_in)
        nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class AuthorsBlock(nn.Sequential):
    """The UNet++ authors' `standard_unit`: conv3x3-ReLU-Dropout(0.5), twice; no batch norm.

    Dropout draws from the global torch RNG, which training seeds and its
    checkpoint restores, so a resumed run stays bit-identical; on the CPU it
    draws 64 elements' coins per generator call (`HalfDropout`).
    """

    def __init__(self, in_channels: int, middle_channels: int, out_channels: int) -> None:
        super().__init__(
            HeConv2d(in_channels, middle_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            HalfDropout(),
            HeConv2d(middle_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            HalfDropout(),
        )


class TransposedUp2x(nn.ConvTranspose2d):
    """x2 upsampling by a learned 2x2 stride-2 transposed convolution (the authors' Conv2DTranspose).

    Keras' default initialisation: Glorot-uniform kernel (its fans sum to the
    same as torch's for this layer), zero bias; no L2 penalty.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=2, stride=2)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands on its gradient contiguous in the forward output's memory format.

    The upsampled tensor goes into a concatenation, whose backward gives it a
    channel slice of a channels_last gradient: strided, and upsampling's
    backward kernel is several times slower on it than on a contiguous one
    (bilinear x2, UNet++'s ten upsamplings at batch 16, Zen 4: 212 against
    32 ms a step in bf16, 167 against 58 ms in fp32, the copy not counted).
    The values are the same, bit for bit (a copy, then the same kernel).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        ctx.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.contiguous(memory_format=ctx.memory_format)


class Upsample2x(nn.Module):
    """x2 upsampling; bilinear with align_corners=True is the reference's choice."""

    def __init__(self, mode: str = "bilinear", align_corners: bool | None = True) -> None:
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ModelError(f"upsample mode {mode!r} is not supported; choose one of {', '.join(UPSAMPLE_MODES)}")
        self.mode = mode
        # interpolate() refuses align_corners for nearest; it only means something for (bi)linear/cubic.
        self.align_corners = align_corners if mode in {"bilinear", "bicubic"} else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=self.align_corners)
        return _ContiguousGrad.apply(up) if up.requires_grad else up

    def extra_repr(self) -> str:
        return f"mode={self.mode}, align_corners={self.align_corners}"


def check_block(block: str, upsample_mode: str, align_corners: bool | None) -> None:
    """Refuse an unknown block, and bilinear settings given to a block that upsamples by transposed convolution."""
    if block not in BLOCKS:
        raise ModelError(f"block {block!r} is unknown; choose one of {', '.join(BLOCKS)}")
    if block == "authors" and (upsample_mode, align_corners) != ("bilinear", True):
        raise ModelError(
            "the authors' block upsamples by a transposed convolution: upsample_mode and align_corners apply "
            "to the vgg block only; leave them at their defaults"
        )


def make_block(block: str, in_channels: int, out_channels: int) -> VGGBlock | AuthorsBlock:
    """The unit of one node: `in_channels` -> `out_channels` (its middle width is `out_channels` too)."""
    unit = AuthorsBlock if block == "authors" else VGGBlock
    return unit(in_channels, out_channels, out_channels)


def make_upsample(
    block: str, in_channels: int, out_channels: int, mode: str = "bilinear", align_corners: bool | None = True
) -> Upsample2x | TransposedUp2x:
    """The x2 upsampling from a level of `in_channels` to the one above of `out_channels`.

    vgg interpolates and keeps the channels; the authors' transposed
    convolution maps them to the upper level's (`upsampled_channels`).
    """
    if block == "authors":
        return TransposedUp2x(in_channels, out_channels)
    return Upsample2x(mode, align_corners)


def upsampled_channels(block: str, in_channels: int, out_channels: int) -> int:
    """How many channels `make_upsample(block, in_channels, out_channels)` gives."""
    return out_channels if block == "authors" else in_channels


def make_head(block: str, in_channels: int, num_classes: int) -> nn.Conv2d:
    """The 1x1 output convolution (logits); the authors' is He-initialised and L2-penalised like their units."""
    conv = HeConv2d if block == "authors" else nn.Conv2d
    return conv(in_channels, num_classes, kernel_size=1)


def l2_kernels(model: nn.Module) -> list[nn.Parameter]:
    """The kernels Keras' `kernel_regularizer=l2(1e-4)` covers in the authors' code: every `HeConv2d` weight.

    Not the biases and not the transposed convolutions (which have no
    regularizer there); empty for the vgg block.
    """
    return [module.weight for module in model.modules() if isinstance(module, HeConv2d)]


def check_filters(filters: tuple[int, ...]) -> None:
    """Refuse filter lists that cannot make an encoder-decoder."""
    if len(filters) < 2 or any(int(f) < 1 for f in filters):
        raise ModelError(
            f"filters {filters} must list at least two positive channel counts, one per level "
            f"(the reference uses {', '.join(map(str, DEFAULT_FILTERS))})"
        )


def check_input(x: torch.Tensor, in_channels: int, depth: int) -> None:
    """Refuse inputs the network cannot process, with a message saying what to do.

    The spatial size must survive `depth` halvings without losing pixels,
    otherwise the decoder's upsampled maps no longer line up with the skips.
    Skipped while torch.compile or the JIT tracer runs the model (as smp's
    `check_input_shape` is): there these Python branches on shapes would
    become guards or be baked into the trace; a bad input still fails, in
    torch's own words.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return
    if x.ndim != 4:
        raise ModelError(f"input must be a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ModelError(
            f"input has {x.shape[1]} channels but the model expects {in_channels}: "
            f"convert the images to {'RGB' if in_channels == 3 else f'{in_channels} channels'} first"
        )
    multiple = 2**depth
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ModelError(
            f"input height and width must both be divisible by {multiple} (the network halves them "
            f"{depth} times), got {height}x{width}: pad or resize the image to a multiple of {multiple} first"
        )
