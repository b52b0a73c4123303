"""U-Net and UNet++ architectures, one module each, sharing `blocks`; they depend on torch alone."""

from unetpp.choices import ARCHITECTURES
from unetpp.errors import ModelError
from unetpp.models.blocks import AuthorsBlock, VGGBlock, l2_kernels
from unetpp.models.nested_unet import NestedUNet
from unetpp.models.registry import BUILDERS, build_model, count_parameters, output_forward
from unetpp.models.unet import UNet

__all__ = [
    "ARCHITECTURES",
    "AuthorsBlock",
    "BUILDERS",
    "ModelError",
    "NestedUNet",
    "UNet",
    "VGGBlock",
    "build_model",
    "count_parameters",
    "l2_kernels",
    "output_forward",
]
