"""`unetpp train`: parse options and hand them to `unetpp.training.loop.train`."""

from __future__ import annotations

from pathlib import Path

import click

from unetpp.commands.options import ARCH_NAMES, device_option, precision_option, progress_option


@click.command()
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="Processed HDF5 written by `unetpp preprocess` (e.g. data/processed/dsb2018_96.h5).")
@click.option("--split", "split_path", type=click.Path(path_type=Path), required=True,
              help="split.json written by `unetpp split`; trains on 'train', selects the best epoch on 'val'.")
@click.option("--arch", required=True, help=f"Architecture to train: one of {', '.join(ARCH_NAMES)}.")
@click.option("--epochs", type=int, default=200, show_default=True, help="Maximum number of epochs (the reference protocol: 200, with early stopping).")
@click.option("--patience", type=int, default=20, show_default=True,
              help="Stop after this many epochs without a better val IoU (per image).")
@click.option("--lr", type=float, default=3e-4, show_default=True, help="Adam learning rate.")
@click.option("--batch-size", type=int, default=16, show_default=True,
              help="Images per batch for training and validation (the last training batch may be smaller).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds weight initialisation and the per-epoch shuffle.")
@device_option
@precision_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for model.pt, history.csv and train.json (written only at the end).")
@click.option("--num-threads", type=int, default=None,
              help="Torch CPU threads [default: all cores available to this process].")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where per-epoch resume checkpoints go [default: .checkpoints/<hash of --out> under the "
                   "working directory]; removed after success.")
@progress_option
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
    precision: str,
    out: Path,
    num_threads: int | None,
    checkpoint_dir: Path | None,
    progress: bool | None,
) -> None:
    """Train one architecture; keep the best checkpoint by val IoU.

    Killed and rerun with the same arguments, it resumes after the last
    completed epoch and ends with the same result as an uninterrupted run.
    """
    from unetpp.training.loop import TrainConfig
    from unetpp.training.loop import train as run_training

    config = TrainConfig(
        data=data, split=split_path, arch=arch, out=out, epochs=epochs, patience=patience, lr=lr,
        batch_size=batch_size, seed=seed, device=device, precision=precision, num_threads=num_threads,
        checkpoint_dir=checkpoint_dir,
    )
    summary = run_training(config, progress=progress)
    click.echo(
        f"{arch}: best val IoU {summary['best_val_iou']:.4f} at epoch {summary['best_epoch']} "
        f"({summary['epochs_run']} epochs, {summary['wall_seconds']:.0f}s on {summary['device']}, "
        f"{summary['precision']}) -> {out}",
        err=True,
    )
