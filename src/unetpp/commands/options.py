"""Options shared by several stage commands, declared once so their help and choices never drift apart.

Choices come from `unetpp.choices`, the table the library checks against
too; it imports no torch, so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.choices import (
    DEFAULT_DEPTH,
    DEFAULT_DEVICE,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_PRECISION,
    DEVICES,
    FIT_MODES,
    PRECISIONS,
    inference_outputs,
)

model_option = click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Trained checkpoint written by `unetpp train` (models/ARCH/seedN/model.pt).",
)
device_option = click.option(
    "--device", default=DEFAULT_DEVICE, show_default=True, help=f"{DEVICES}; auto picks CUDA, then MPS, then the CPU."
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=DEFAULT_PRECISION,
    show_default=True,
    help="auto: bf16 autocast where the device does bf16 natively (CUDA with bf16, CPUs with AVX-512 BF16 or "
    "AMX), else fp32; fp32: the reference path; bf16: force bf16 autocast. Weights and loss stay fp32.",
)
inference_output_option = click.option(
    "--inference-output",
    type=click.Choice(inference_outputs(DEFAULT_DEPTH)),  # what `unetpp train`'s models offer
    default="last",
    show_default=True,
    help=f"Deep-supervision models only (nested_unet_ds): the last head, the mean of the heads' logits, "
    f"or a pruned level L1..L{DEFAULT_DEPTH} that computes only what that head needs. Other models accept only "
    f"'last'.",
)
fit_mode_option = click.option(
    "--mode",
    type=click.Choice(FIT_MODES),
    default="resize",
    show_default=True,
    help="resize: to the training size, predict, resize the probabilities back (the network sees nuclei at the "
    "training scale). pad: reflect-pad to a multiple of 16, predict at native size, crop back (for images "
    "already at the training scale).",
)
training_size_option = click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Training image size for --mode resize (default: the size recorded in model.pt, else {DEFAULT_IMAGE_SIZE}).",
)
gpu_lease_dir_option = click.option(
    "--gpu-lease-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="UNETPP_GPU_LEASE_DIR",
    show_envvar=True,
    help="Folder of the per-GPU lock files (a folder local to this machine) [default: "
    "<temp dir>/unetpp-gpu-leases-<uid>]. With --device auto or cuda on a machine with several GPUs, and no "
    "CUDA_VISIBLE_DEVICES, SLURM_JOB_GPUS or SLURM_STEP_GPUS set, the command leases one free GPU for its "
    "lifetime (an flock, freed however the process ends) and waits, saying so, while every GPU is leased; so "
    "`snakemake --resources gpu=N` and `dvc queue start -j N` put N jobs on N GPUs. Otherwise it changes nothing.",
)
verbose_option = click.option(
    "--verbose",
    is_flag=True,
    default=False,
    help="Also say how this process's memory allocator was set (glibc keeps freed memory for reuse, see "
    "unetpp.allocator); quiet by default.",
)
progress_option = click.option(
    "--progress/--no-progress", default=None, help="Show progress bars (default: only when stderr is a terminal)."
)

max_pixels_option = click.option(
    "--max-pixels",
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse an image whose PNG header declares more pixels than this, before decoding it (pixel-bomb "
    "guard; the largest stage1_train image is 1040x1388 = 1.44 MP).",
)
