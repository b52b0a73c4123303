"""U-Net and UNet++ architectures, one module each, sharing `blocks`."""

from unetpp.models.blocks import ModelError, VGGBlock
from unetpp.models.nested_unet import INFERENCE_OUTPUTS, NestedUNet
from unetpp.models.registry import ARCHITECTURES, arch_help, build_model, count_parameters
from unetpp.models.unet import UNet

__all__ = [
    "ARCHITECTURES",
    "INFERENCE_OUTPUTS",
    "ModelError",
    "NestedUNet",
    "UNet",
    "VGGBlock",
    "arch_help",
    "build_model",
    "count_parameters",
]
