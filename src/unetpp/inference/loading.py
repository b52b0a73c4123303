"""Turn a `model.pt` written by `unetpp train` back into a ready-to-run eval model.

The file is read with `torch.load(weights_only=True)`, so a checkpoint from an
untrusted source cannot run code; everything it must contain is checked here
so that `predict` and `predict-images` fail with one clear message instead of
a torch traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from unetpp.choices import ARCHITECTURES, BLOCKS, DEFAULT_BLOCK
from unetpp.errors import UnetppError
from unetpp.models import NestedUNet, UNet, build_model, output_forward
from unetpp.training.step import INPUT_MEMORY_FORMAT

REQUIRED_KEYS = ("state_dict", "arch", "model_kwargs")
_RETRAIN = "retrain it with `unetpp train` (or `snakemake`/`dvc repro`)"
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused the file, without PyTorch's advice to retry with weights_only=False.

    That advice would run any code a downloaded file carries; a real model.pt never needs it.
    """
    text = str(exc).strip()
    if "weights_only" in text or "Weights only load failed" in text:
        found = _GLOBAL.search(text)
        what = f"the Python object {found.group(1)}" if found else "Python objects"
        return f"it holds {what}, which a safe load refuses and never runs"
    return text.splitlines()[0] if text else type(exc).__name__


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate the checkpoint dict without building the model."""
    path = Path(path)
    if not path.is_file():
        raise UnetppError(f"model file {path} does not exist: {_RETRAIN}, or pass the right --model path")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise UnetppError(
            f"model file {path} cannot be read as a unetpp checkpoint ({_load_failure(exc)}): it is corrupt or "
            f"not a model.pt written by `unetpp train`; {_RETRAIN}"
        ) from None  # chaining would print PyTorch's weights_only=False advice in a traceback
    if not isinstance(checkpoint, dict):
        raise UnetppError(f"model file {path} holds a {type(checkpoint).__name__}, not a checkpoint dict; {_RETRAIN}")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise UnetppError(f"model file {path} lacks the key(s) {', '.join(missing)}; {_RETRAIN}")
    arch = checkpoint["arch"]
    if arch not in ARCHITECTURES:
        raise UnetppError(
            f"model file {path} names architecture {arch!r}, which this version does not know "
            f"(known: {', '.join(ARCHITECTURES)}); {_RETRAIN}"
        )
    if not isinstance(checkpoint["model_kwargs"], dict) or not isinstance(checkpoint["state_dict"], dict):
        raise UnetppError(f"model file {path}: 'model_kwargs' and 'state_dict' must be dicts; {_RETRAIN}")
    if checkpoint_block(checkpoint) not in BLOCKS:
        raise UnetppError(
            f"model file {path} names block {checkpoint['block']!r}, which this version does not know "
            f"(known: {', '.join(BLOCKS)}); {_RETRAIN}"
        )
    return checkpoint


def checkpoint_block(checkpoint: dict[str, Any]) -> str:
    """The block the model was trained with: model.pt's `block`, absent in files written before it (vgg)."""
    return checkpoint.get("block", DEFAULT_BLOCK)


def build_from_checkpoint(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> UNet | NestedUNet:
    """Rebuild the architecture the checkpoint names and load its weights (strictly)."""
    try:
        model = build_model(checkpoint["arch"], **{"block": checkpoint_block(checkpoint), **checkpoint["model_kwargs"]})
    except TypeError as exc:
        raise UnetppError(
            f"model file {path}: model_kwargs {checkpoint['model_kwargs']} are not valid ({exc}); {_RETRAIN}"
        ) from exc
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UnetppError(
            f"model file {path}: its weights do not fit architecture {checkpoint['arch']!r} with "
            f"{checkpoint['model_kwargs']} ({first}); {_RETRAIN}"
        ) from exc
    return model


def select_output(
    model: UNet | NestedUNet, output: str, path: str | os.PathLike[str], arch: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward that computes `--inference-output output` with `model`; refused with the file named."""
    choices = model.inference_choices
    if output in choices:
        return output_forward(model, output)
    if len(choices) == 1:
        raise UnetppError(
            f"--inference-output {output} needs a deep-supervision model, but {path} is {arch!r} "
            f"(one output head): use --inference-output last, or a nested_unet_ds model"
        )
    raise UnetppError(
        f"--inference-output {output} is not available for {path} ({arch!r}): choose one of {', '.join(choices)}"
    )


def load_trained_model(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> tuple[UNet | NestedUNet, dict[str, Any]]:
    """(model in eval mode on `device`, in INPUT_MEMORY_FORMAT (channels_last), and the checkpoint dict)."""
    checkpoint = read_checkpoint(path)
    model = build_from_checkpoint(checkpoint, path)
    model.eval()
    model.to(device=torch.device(device), memory_format=INPUT_MEMORY_FORMAT)
    return model, checkpoint
