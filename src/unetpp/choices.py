"""The names a user can choose, and the model defaults they depend on: one table for the CLI and the library.

Plain Python (no torch, no click): the command options build their choices
and help from it without importing torch, and the models, the device and
layout code, the metrics and `TrainConfig` check against the same lists, so
no list has a copy that could drift.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchInfo:
    """How reports and `--help` name one architecture (`unetpp.models.registry` builds it)."""

    display_name: str
    description: str


ARCHITECTURES: dict[str, ArchInfo] = {
    "unet": ArchInfo("U-Net", "U-Net with VGG blocks (7,852,545 parameters)"),
    "nested_unet": ArchInfo("UNet++", "UNet++ without deep supervision (9,163,329 parameters)"),
    "nested_unet_ds": ArchInfo(
        "UNet++ (deep supervision)",
        "UNet++ with four deep-supervision heads, loss = mean of the four (9,163,428 parameters)",
    ),
}
# `--block`: the unit every node of both architectures is made of, with the upsampling that goes with it.
BLOCKS: dict[str, str] = {
    "vgg": "the reference's conv3x3-BN-ReLU twice, bilinear x2 upsampling (the published results)",
    "authors": "the UNet++ authors' Keras standard_unit: conv3x3-ReLU-Dropout(0.5) twice, He-normal init, no batch "
    "norm, 2x2 stride-2 transposed-convolution upsampling, L2 1e-4 on the conv kernels (7,760,097 / 9,042,177 / "
    "9,042,276 parameters)",
}
DEFAULT_BLOCK = "vgg"
# `unetpp train --augment`: what each training image goes through, drawn per image from (seed, epoch).
AUGMENTS: dict[str, str] = {
    "none": "no augmentation (the reference protocol)",
    "flips": "one of the 8 flips and right-angle rotations, image and mask alike",
    "flips_colour": "those, then brightness x0.8-1.2, contrast x0.8-1.2, saturation x0.7-1.3, hue +-0.05 turn "
    "and, for 1 image in 10, grey (the image only)",
}
DEFAULT_AUGMENT = "none"
DEFAULT_FILTERS = (32, 64, 128, 256, 512)  # channels per level, as in the reference; depth = len - 1
DEFAULT_DEPTH = len(DEFAULT_FILTERS) - 1

DEVICES = "auto, cpu, cuda, cuda:N or mps"  # torch device names are open-ended: a description, not a list
DEFAULT_DEVICE = "auto"  # CUDA, then MPS, then the CPU (training/device.py)
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_PRECISION = "auto"  # bf16 where the device does it natively, else fp32 (training/device.py)
LAYOUTS = ("auto", "channels_last", "nchw")
REDUCTIONS = ("per_image", "pooled", "batch_pooled")  # how IoU and Dice pool pixels over images
DEFAULT_SELECTION_METRIC = "batch_pooled"  # the reference's AverageMeter: val IoU pooled within each val batch
SUBSETS = ("train", "val", "test")  # the subsets of split.json
REFERENCE_BATCH_SIZE = 16  # the reference's batch: training, validation and the batch_pooled reduction
DEFAULT_PREDICT_BATCH_SIZE = 16  # images per forward pass of `unetpp predict` (memory and speed, not results)
DEFAULT_IMAGE_SIZE = 96  # the side the pipeline trains at (`unetpp preprocess --size`)
# The pixel-bomb guard of every PNG decode (`--max-pixels`): the largest stage1_train image is 1040x1388
# (1.44 MP); 64 MP leaves room for any real microscopy tile while refusing a tiny PNG that inflates to
# gigabytes, before it is decoded.
DEFAULT_MAX_PIXELS = 64_000_000
FIT_MODES = ("resize", "pad")  # how predict-images and predict-test fit an image of any size to the network
# `unetpp bench-train --also`: each name is "<layout>_<precision>[_kept]", the set-up it times ("_kept":
# with the default path's allocator setting, unetpp.allocator).
BENCH_VARIANTS = (
    "channels_last_fp32", "nchw_bf16", "channels_last_bf16", "nchw_fp32_kept", "channels_last_fp32_kept",
)


def arch_help() -> str:
    """Help text for an `--arch` option: every name with its description."""
    return "Architecture: " + "; ".join(f"{name} = {info.description}" for name, info in ARCHITECTURES.items()) + "."


def inference_outputs(depth: int = DEFAULT_DEPTH, deep_supervision: bool = True) -> tuple[str, ...]:
    """What an eval-time forward can return for a model of `depth` levels below the top.

    "last" is the deepest head; with deep supervision also "mean" (of the
    heads' logits) and "L1".."L<depth>" (one head, computing only what it needs).
    """
    if not deep_supervision:
        return ("last",)
    return ("last", "mean", *(f"L{level}" for level in range(1, depth + 1)))
