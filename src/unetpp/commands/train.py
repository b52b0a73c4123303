"""`unetpp train`: parse options and hand them to `unetpp.training.loop.train`.

Every default is `TrainConfig`'s, read from the class without importing torch.
"""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.choices import AUGMENTS, BLOCKS, LAYOUTS, REDUCTIONS, arch_help
from unetpp.commands.options import (
    device_option, gpu_lease_dir_option, precision_option, progress_option, verbose_option,
)
from unetpp.training.config import TrainConfig

COUNT = click.IntRange(min=1)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="Processed HDF5 written by `unetpp preprocess` (e.g. data/processed/dsb2018_96.h5).")
@click.option("--split", "split_path", type=click.Path(path_type=Path), required=True,
              help="split.json written by `unetpp split`; trains on 'train', selects the best epoch on 'val'.")
@click.option("--arch", required=True, help=arch_help())
@click.option("--epochs", type=COUNT, default=TrainConfig.epochs, show_default=True,
              help="Maximum number of epochs (the reference protocol: 200, with early stopping).")
@click.option("--patience", type=COUNT, default=TrainConfig.patience, show_default=True,
              help="Stop after this many epochs without a better val IoU (under --selection-metric).")
@click.option("--selection-metric", type=click.Choice(REDUCTIONS), default=TrainConfig.selection_metric,
              show_default=True,
              help="The val IoU that picks the kept epoch and drives early stopping: per_image (mean of each "
                   "image's IoU), pooled (over the whole val set) or batch_pooled (pooled within each val batch, "
                   "averaged weighted by batch size: the reference implementation's AverageMeter). All three are "
                   "recorded in history.csv every epoch.")
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=COUNT, default=TrainConfig.batch_size, show_default=True,
              help="Images per batch for training and validation (the last training batch may be smaller).")
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True,
              help="Seeds weight initialisation and the per-epoch shuffle.")
@click.option("--block", type=click.Choice(list(BLOCKS)), default=TrainConfig.block, show_default=True,
              help="The unit every node is made of: " + "; ".join(f"{k} = {v}" for k, v in BLOCKS.items())
                   + ". The authors' L2 penalty becomes Adam's coupled weight_decay 2e-4 on those kernels (the "
                   "gradient of 1e-4 x sum(w^2)); loss, Adam, lr and early stopping stay the reference's. model.pt "
                   "records the block, so predict and predict-test rebuild it.")
@click.option("--augment", type=click.Choice(list(AUGMENTS)), default=TrainConfig.augment, show_default=True,
              help="Training augmentation, per image, drawn from (--seed, epoch) so a resumed run repeats an "
                   "uninterrupted one, applied on the training device: "
                   + "; ".join(f"{k} = {v}" for k, v in AUGMENTS.items()) + ".")
@device_option
@gpu_lease_dir_option
@precision_option
@click.option("--cuda-graph/--no-cuda-graph", default=TrainConfig.cuda_graph, show_default=True,
              help="CUDA only: capture each training step (forward, loss, backward, Adam) as one CUDA graph per "
                   "batch shape, after a few warm-up steps whose effects are undone, and replay it. At batch 16 a "
                   "GPU step is bound by kernel launches: a graph made a UNet++ step about 2x faster on an H200. "
                   "Adam then runs capturable (step count on the GPU), so the weights are not bit-identical to an "
                   "eager run's; the option is part of the resume fingerprint. Refused on the CPU and MPS.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for model.pt, history.csv and train.json (written only at the end).")
@click.option("--num-threads", type=COUNT, default=TrainConfig.num_threads,
              help="Torch CPU threads [default: all cores available to this process].")
@click.option("--layout", type=click.Choice(LAYOUTS), default=TrainConfig.layout, show_default=True,
              help="Memory layout of training. auto: channels_last on GPUs and with bf16; for fp32 on a CPU, "
                   "times a few steps in each layout once per machine (kept in ~/.cache/unetpp/layout.json, "
                   "or $UNETPP_CACHE_DIR) and takes channels_last only when clearly faster. channels_last / nchw "
                   "pin it. It changes only the fp32 summation order, not the maths; a resumed run keeps its layout.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=TrainConfig.checkpoint_dir,
              envvar="UNETPP_CHECKPOINT_DIR", show_envvar=True,
              help="Root folder of the per-epoch resume checkpoints; each run uses <root>/<--out as a name>-<hash "
                   "of the settings and data>, removed after success [default: .checkpoints under the working "
                   "directory]. Point it outside the checkout (e.g. UNETPP_CHECKPOINT_DIR=~/unetpp-checkpoints) and "
                   "a fresh clone of the same commit resumes an interrupted run.")
@progress_option
@verbose_option
def train(
    data: Path,
    split_path: Path,
    arch: str,
    epochs: int,
    patience: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str,
    gpu_lease_dir: Path | None,
    precision: str,
    cuda_graph: bool,
    out: Path,
    num_threads: int | None,
    checkpoint_dir: Path | None,
    selection_metric: str,
    layout: str,
    block: str,
    augment: str,
    progress: bool | None,
    verbose: bool,
) -> None:
    """Train one architecture; keep the epoch with the best val IoU (--selection-metric).

    Killed and rerun with the same arguments, it resumes after the last
    completed epoch and ends with the same result as an uninterrupted run.
    """
    from unetpp.allocator import keep_freed_memory
    from unetpp.training.gpu_lease import lease_gpu
    from unetpp.training.loop import train as run_training

    allocator = keep_freed_memory()  # this process trains and then ends: keeping its peak memory costs nothing
    gpu = lease_gpu(device, gpu_lease_dir)  # held until the process ends; the device unchanged where none applies
    config = TrainConfig(
        data=data, split=split_path, arch=arch, out=out, epochs=epochs, patience=patience, lr=lr,
        batch_size=batch_size, seed=seed, device=gpu.device, precision=precision, num_threads=num_threads,
        checkpoint_dir=checkpoint_dir, selection_metric=selection_metric, layout=layout, block=block, augment=augment,
        cuda_graph=cuda_graph,
    )
    summary = run_training(config, progress=progress)
    click.echo(
        f"{arch} ({block} block, augment {augment}): best val IoU ({selection_metric}) "
        f"{summary['best_val_iou']:.4f} at epoch {summary['best_epoch']} "
        f"({summary['epochs_run']} epochs, {summary['wall_seconds']:.0f}s on {summary['device']}, "
        f"{summary['precision']}) -> {out}",
        err=True,
    )
    if verbose:
        click.echo(allocator, err=True)
