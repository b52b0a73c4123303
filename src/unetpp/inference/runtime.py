"""Device and precision for inference: the same choice `unetpp train` makes."""

from __future__ import annotations

import torch

from unetpp.training.device import resolve_device, resolve_precision


def resolve_runtime(device: str, precision: str) -> tuple[torch.device, str]:
    """(torch device, "fp32" or "bf16") for the --device/--precision options."""
    dev = resolve_device(device)
    return dev, resolve_precision(precision, dev)
