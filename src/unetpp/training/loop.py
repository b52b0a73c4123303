"""The training stage: epochs, validation, best-model tracking, early stopping, resume.

Design choices (see also docs/method.md):

- The whole subset sits in memory as uint8 tensors on the training device and
  is batched by index; there is no DataLoader.
- Each epoch's shuffle comes from a generator seeded with (seed, epoch), so a
  resumed run sees exactly the order an uninterrupted run would.
- The last, partial training batch is kept (every image is seen every epoch;
  536 training images at batch 16 give 33 full batches and one of 8).
- The best model is the epoch with the highest val IoU under the selection
  metric (`batch_pooled` in the reference protocol: its AverageMeter of IoU
  pooled within each val batch, weighted by batch size), which also drives
  early stopping; all three reductions are recorded every epoch. Training
  averages the loss over every head (`forward_heads`); validation runs in
  eval mode and scores the deepest head alone (`forward`).
- `--augment` changes each training batch per image with parameters drawn
  from (seed, epoch) at the epoch's start (`training/augment.py`); `none`
  leaves the batches untouched. `--block authors` adds the authors' L2
  penalty through the optimizer (`training/optimizer.py`).
- The memory layout (channels_last or NCHW) is chosen by
  `training/layout.py` and kept in the checkpoint: a resumed run keeps it.
- `--cuda-graph` (CUDA only) replays each step from a captured graph
  (`training/cuda_graph.py`), with Adam capturable for the whole run.
"""

from __future__ import annotations

import copy
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from unetpp.atomic import remove_stale_temps
from unetpp.choices import DEFAULT_IMAGE_SIZE, REDUCTIONS
from unetpp.data.processed import ProcessedSet, file_sha256, load_processed
from unetpp.errors import UnetppError
from unetpp.metrics import PixelCounts, iou
from unetpp.models import NestedUNet, UNet, build_model, count_parameters
from unetpp.training.augment import EpochAugment, epoch_augment
from unetpp.training.checkpoint import (
    CHECKPOINT_FILE,
    CHECKPOINT_ROOT,
    fingerprint,
    load_checkpoint,
    other_checkpoints,
    rng_state,
    run_checkpoint_dir,
    save_checkpoint,
    set_rng_state,
)
from unetpp.training.config import TrainConfig
from unetpp.training.cuda_graph import GraphedTrainStep, StepOutputs
from unetpp.training.device import default_num_threads, describe_device, resolve_device, resolve_precision
from unetpp.training.gpu_lease import gpu_record
from unetpp.training.layout import memory_format, resolve_layout
from unetpp.training.optimizer import make_optimizer
from unetpp.training.provenance import code_commit
from unetpp.training.outputs import HISTORY_FILE, MODEL_FILE, SUMMARY_FILE, write_outputs
from unetpp.training.step import INPUT_MEMORY_FORMAT, eval_step, make_batch, train_step
from unetpp.training.stopping import EarlyStopping

SHUFFLE_SEED_STRIDE = 1_000_003  # keeps (seed, epoch) -> generator seed one-to-one for epochs < 1e6


@dataclass
class EpochStats:
    """Mean loss and the IoU of one pass under every reduction (metrics.REDUCTIONS)."""

    loss: float
    iou: dict[str, float]


def shuffled_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of `epoch`: a permutation depending only on (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * SHUFFLE_SEED_STRIDE + epoch)
    return torch.randperm(n, generator=generator)


def _as_tensors(subset: ProcessedSet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(subset.images).to(device), torch.from_numpy(subset.masks).to(device)


def _accumulator(device: torch.device) -> torch.Tensor:
    """A zero loss accumulator kept on the device (no per-step sync); MPS has no float64."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)


def _summarise(loss_sum: torch.Tensor, n: int, counts: list[PixelCounts], batch_size: int) -> EpochStats:
    """`batch_pooled` pools within the batches as they were run (consecutive `batch_size` images)."""
    pooled = PixelCounts.concat(counts)
    pooled = PixelCounts(*(t.cpu() for t in (pooled.intersection, pooled.union, pooled.pred_sum, pooled.target_sum)))
    return EpochStats(float(loss_sum) / n, {r: iou(pooled, r, batch_size) for r in REDUCTIONS})


def train_epoch(
    model: UNet | NestedUNet,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    masks: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    precision: str,
    bar: tqdm | None = None,
    layout: torch.memory_format = INPUT_MEMORY_FORMAT,
    augment: EpochAugment | None = None,
    step: Callable[[torch.Tensor, torch.Tensor], StepOutputs] | None = None,
) -> EpochStats:
    """One pass over the training set in `order`, each batch through `augment` if given; image-weighted mean loss.

    `step(images, masks)` runs each optimizer step (a `GraphedTrainStep`); by default `train_step`, eagerly.
    """
    model.train()
    loss_sum = _accumulator(images.device)
    counts: list[PixelCounts] = []
    order = order.to(images.device)
    for k, start in enumerate(range(0, len(order), batch_size)):
        index = order[start : start + batch_size]
        x, y = make_batch(images, masks, index, layout)
        if augment is not None:
            x, y = augment.apply(index, x, y)
            x = x.contiguous(memory_format=layout)
        loss, batch_counts = step(x, y) if step is not None else train_step(model, optimizer, x, y, precision)
        loss_sum += loss.to(loss_sum.dtype) * len(index)
        counts.append(batch_counts)
        if bar is not None:
            bar.update(1)
            if not bar.disable and (k % 8 == 0 or start + batch_size >= len(order)):
                bar.set_postfix(loss=f"{loss.item():.4f}")  # .item() syncs a GPU, so only every 8th step
    return _summarise(loss_sum, len(order), counts, batch_size)


def validation_pass(
    model: UNet | NestedUNet,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int,
    precision: str,
    layout: torch.memory_format = INPUT_MEMORY_FORMAT,
) -> EpochStats:
    """Eval-mode loss and IoU over the validation set in split order."""
    model.eval()
    loss_sum = _accumulator(images.device)
    counts: list[PixelCounts] = []
    for start in range(0, images.shape[0], batch_size):
        index = torch.arange(start, min(start + batch_size, images.shape[0]), device=images.device)
        x, y = make_batch(images, masks, index, layout)
        loss, batch_counts = eval_step(model, x, y, precision)
        loss_sum += loss.to(loss_sum.dtype) * len(index)
        counts.append(batch_counts)
    return _summarise(loss_sum, images.shape[0], counts, batch_size)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the state_dict in the default (contiguous) layout."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _plain(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Tuples to lists, so model.pt and the fingerprint hold JSON-like values only."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def run_settings(
    config: TrainConfig, device: torch.device, precision: str, threads: int, image_size: int
) -> dict[str, Any]:
    """The settings stored in model.pt; all but the paths also go into the resume fingerprint.

    `image_size` lets `predict-images` map new images to the scale the model was trained at.
    """
    return {
        "arch": config.arch,
        "image_size": int(image_size),
        "epochs": config.epochs,
        "patience": config.patience,
        "lr": float(config.lr),
        "batch_size": config.batch_size,
        "seed": config.seed,
        "device": device.type,
        "precision": precision,
        "num_threads": threads,
        "selection_metric": config.selection_metric,
        "layout": config.layout,
        "augment": config.augment,
        "block": config.block,
        # Only when set, so that the fingerprints (and resumes) of eager runs stay those of before the option.
        **({"cuda_graph": True} if config.cuda_graph else {}),
        "model_kwargs": _plain(config.model_kwargs),
        "torch_version": str(torch.__version__),
        "data": str(config.data),
        "split": str(config.split),
        "data_sha256": file_sha256(config.data),
        "split_sha256": file_sha256(config.split),
    }


def history_row(epoch: int, train_stats: EpochStats, val_stats: EpochStats, lr: float, seconds: float) -> dict:
    """One history.csv row: the val IoU under every reduction, whichever one selects the epoch."""
    return {
        "epoch": epoch,
        "train_loss": train_stats.loss,
        "train_iou": train_stats.iou["per_image"],
        "val_loss": val_stats.loss,
        **{f"val_iou_{r}": val_stats.iou[r] for r in REDUCTIONS},
        "lr": lr,
        "seconds": round(seconds, 3),
    }


@dataclass
class Run:
    """Everything one training carries from epoch to epoch, and into its checkpoint."""

    model: UNet | NestedUNet
    optimizer: torch.optim.Optimizer
    stopper: EarlyStopping
    layout: dict[str, Any]
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_row: dict[str, Any] = field(default_factory=dict)
    wall_before: float = 0.0
    commits: list[dict[str, Any]] = field(default_factory=list)
    step: GraphedTrainStep | None = None  # None: eager `train_step`

    @property
    def memory_format(self) -> torch.memory_format:
        """The torch memory format of the run's layout, for its batches."""
        return memory_format(self.layout["layout"])

    def checkpoint(self, run_fingerprint: str, settings: dict[str, Any], out: Path, wall: float) -> dict[str, Any]:
        """The resume checkpoint after the last completed epoch (`resume` reads it back)."""
        return {
            "fingerprint": run_fingerprint,
            "settings": settings,
            "out": str(out),
            "model": _cpu_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "stopper": self.stopper.state_dict(),
            "history": self.history,
            "best_state": self.best_state,
            "best_row": self.best_row,
            "layout": self.layout,
            "git_commits": self.commits,
            "wall_seconds": wall,
            "rng": rng_state(),
        }

    def resume(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by `checkpoint` (same fingerprint)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stopper.load_state_dict(state["stopper"])
        self.history = list(state["history"])
        self.best_state = state["best_state"]
        self.best_row = dict(state["best_row"])
        self.wall_before = float(state["wall_seconds"])
        self.commits = list(state["git_commits"])
        set_rng_state(state["rng"])


def _check_image_size(model: UNet | NestedUNet, config: TrainConfig, size: int) -> None:
    multiple = 2**model.depth
    if size % multiple:
        raise UnetppError(
            f"{config.data}: images are {size}x{size}, but {config.arch} pools "
            f"{multiple.bit_length() - 1} times and needs a multiple of {multiple}: rerun `unetpp preprocess` "
            f"with --size {DEFAULT_IMAGE_SIZE} (or another multiple of {multiple})"
        )


def start_or_resume(
    config: TrainConfig,
    device: torch.device,
    precision: str,
    threads: int,
    image_size: int,
    resumed: dict[str, Any] | None,
    progress: bool | None,
) -> Run:
    """The seeded model, Adam and stopper, in the run's layout; continued from `resumed` when there is one.

    The layout is measured (or read from the per-machine cache) only for a new
    run; a resumed run keeps the one in its checkpoint.
    """
    torch.manual_seed(config.seed)
    model = build_model(config.arch, **config.architecture_kwargs())
    _check_image_size(model, config, image_size)
    if resumed is not None:
        layout = dict(resumed["layout"])
    else:  # may time a few steps; leaves the global RNG as it found it, so the initial weights stay seeded
        layout = resolve_layout(config.layout, device, precision, config.arch, config.batch_size, image_size,
                                threads, _plain(config.architecture_kwargs()), progress)
    model = model.to(device, memory_format=memory_format(layout["layout"]))
    optimizer = make_optimizer(model, config.lr, capturable=config.cuda_graph)
    run = Run(model, optimizer, EarlyStopping(config.patience), layout, best_state=_cpu_state(model))
    if resumed is not None:
        run.resume(resumed)
    if config.cuda_graph:  # captured at each batch shape's first step, after any resume has set the state
        run.step = GraphedTrainStep(model, optimizer, precision)
    return run


def summarise_run(
    config: TrainConfig, run: Run, settings: dict[str, Any], device: torch.device, precision: str, threads: int,
    wall: float, resumed_from: int, n_train: int, n_val: int,
) -> dict[str, Any]:
    """train.json: the outcome and how it was reached; on CUDA also `gpu`, the GPU used and its lease."""
    gpu = gpu_record(device)  # None off CUDA, so a CPU run's train.json is what it was
    return {
        "arch": config.arch,
        "seed": config.seed,
        "block": config.block,
        "augment": config.augment,
        "selection_metric": config.selection_metric,
        "best_epoch": run.stopper.best_epoch,
        "best_val_iou": run.stopper.best_value,
        **{f"best_val_iou_{r}": run.best_row.get(f"val_iou_{r}") for r in REDUCTIONS},
        "epochs_run": len(run.history),
        "stopped_early": run.stopper.should_stop and len(run.history) < config.epochs,
        "wall_seconds": round(wall, 3),
        "resumed_after_epoch": resumed_from,
        "device": describe_device(device),
        **({"gpu": gpu} if gpu is not None else {}),
        "precision": precision,
        "layout": run.layout,
        "torch_version": str(torch.__version__),
        "num_threads": threads,
        "git_commit": run.commits[-1]["commit"],
        "git_commits": run.commits,
        "n_train": n_train,
        "n_val": n_val,
        "parameters": count_parameters(run.model),
        "settings": settings,
    }


def model_payload(run: Run, summary: dict[str, Any]) -> dict[str, Any]:
    """model.pt: the kept weights plus what loading and reporting need, taken from train.json's facts."""
    return {
        "state_dict": run.best_state,
        "arch": summary["arch"],
        "block": summary["block"],  # what `inference.loading` rebuilds (absent in older files: the vgg block)
        # A copy, not a second reference to the same dict: torch.save would then write it differently.
        "model_kwargs": copy.deepcopy(summary["settings"]["model_kwargs"]),
        "settings": summary["settings"],
        "best_epoch": summary["best_epoch"],
        "best_val_iou": summary["best_val_iou"],
        "selection_metric": summary["selection_metric"],
    }


@dataclass(frozen=True)
class CheckpointSlot:
    """Where this run's resume checkpoint lives, the fingerprint it must carry, and what it held at the start."""

    directory: Path
    fingerprint: str
    state: dict[str, Any] | None  # None: nothing to resume


def open_checkpoint(config: TrainConfig, settings: dict[str, Any]) -> CheckpointSlot:
    """Find this run's checkpoint folder (by settings and data) and read the checkpoint there, if any.

    Temp files a kill -9 left behind are tidied first; checkpoints of the same
    --out from other settings or data are reported, never used.
    """
    run_fingerprint = fingerprint({k: v for k, v in settings.items() if k not in ("data", "split")})
    root = Path(config.checkpoint_dir) if config.checkpoint_dir else Path.cwd() / CHECKPOINT_ROOT
    checkpoint_dir = run_checkpoint_dir(root, config.out, run_fingerprint)
    remove_stale_temps(checkpoint_dir, (CHECKPOINT_FILE,))
    remove_stale_temps(config.out, (MODEL_FILE, HISTORY_FILE, SUMMARY_FILE))
    resumed = load_checkpoint(checkpoint_dir, run_fingerprint)
    for other in other_checkpoints(checkpoint_dir):
        print(f"unetpp train: {other} holds a checkpoint of {config.out} from other settings or data; it is not "
              f"used (delete it if you will not rerun those settings)", file=sys.stderr)
    return CheckpointSlot(checkpoint_dir, run_fingerprint, resumed)


def run_epoch(
    run: Run,
    config: TrainConfig,
    precision: str,
    train_data: tuple[torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor],
    progress: bool | None,
) -> dict[str, Any]:
    """Train and validate the next epoch, keep the weights if it is the best so far, log it; its history row.

    The shuffle and the augmentation depend only on (seed, epoch), so a resumed run repeats an uninterrupted one.
    """
    epoch = len(run.history) + 1
    epoch_start = time.perf_counter()
    images, masks = train_data
    order = shuffled_order(len(images), config.seed, epoch)
    augment = epoch_augment(config.augment, len(images), config.seed, epoch, images.device)
    with tqdm(total=math.ceil(len(images) / config.batch_size), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
              leave=False, disable=None if progress is None else not progress, file=sys.stderr) as bar:
        train_stats = train_epoch(run.model, run.optimizer, images, masks, order, config.batch_size, precision, bar,
                                  run.memory_format, augment, run.step)
    val_stats = validation_pass(run.model, *val_data, config.batch_size, precision, run.memory_format)
    row = history_row(epoch, train_stats, val_stats, run.optimizer.param_groups[0]["lr"],
                      time.perf_counter() - epoch_start)
    metric = config.selection_metric
    if run.stopper.update(epoch, val_stats.iou[metric]):
        run.best_state = _cpu_state(run.model)
        run.best_row = row
    run.history.append(row)
    tqdm.write(
        f"epoch {epoch}/{config.epochs}: train loss {row['train_loss']:.4f} IoU {row['train_iou']:.4f} | "
        f"val loss {row['val_loss']:.4f} IoU {metric} {row[f'val_iou_{metric}']:.4f} "
        f"(per image {row['val_iou_per_image']:.4f}) | best {run.stopper.best_value:.4f} "
        f"@ {run.stopper.best_epoch} | {row['seconds']:.1f}s",
        file=sys.stderr,
    )
    return row


def train(
    config: TrainConfig,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train, write `config.out/{model.pt,history.csv,train.json}`, return the train.json summary.

    `progress`: True/False force the tqdm bars on/off; None shows them only on a
    terminal. `on_epoch_end(epoch, row)` runs after each epoch's checkpoint is
    on disk (tests use it to simulate a kill).
    """
    config.validate()
    device = resolve_device(config.device)
    if config.cuda_graph and device.type != "cuda":
        raise UnetppError(f"--cuda-graph needs a CUDA device, and this run would train on {device.type} "
                          f"(--device {config.device}): leave --cuda-graph out, and the steps run eagerly")
    if config.cuda_graph and device.index is not None:
        torch.cuda.set_device(device)  # a graph is captured on the current device's streams (--device cuda:N)
    precision = resolve_precision(config.precision, device)
    train_set = load_processed(config.data, config.split, "train")
    val_set = load_processed(config.data, config.split, "val")
    threads = config.num_threads or default_num_threads()
    torch.set_num_threads(threads)
    settings = run_settings(config, device, precision, threads, train_set.size)

    # Resume: the checkpoint of these settings and data, if an earlier run left one.
    slot = open_checkpoint(config, settings)
    run = start_or_resume(config, device, precision, threads, train_set.size, slot.state, progress)
    resumed_from = len(run.history)
    if slot.state is not None:
        print(f"unetpp train: resuming from {slot.directory} after epoch {resumed_from}", file=sys.stderr)
    run.commits.append({"commit": code_commit(), "from_epoch": resumed_from + 1})
    print(f"unetpp train: {config.arch} ({config.block} block, augment {config.augment}), "
          f"layout {run.layout['layout']} ({run.layout['source']}), {precision}, "
          f"{threads} thread(s){', steps replayed from CUDA graphs' if config.cuda_graph else ''}, "
          f"selecting on val IoU {config.selection_metric}; checkpoints in {slot.directory}",
          file=sys.stderr)

    # Epochs: each one checkpointed before the next starts.
    train_data = _as_tensors(train_set, device)
    val_data = _as_tensors(val_set, device)
    started = time.perf_counter()
    while len(run.history) < config.epochs and not run.stopper.should_stop:
        row = run_epoch(run, config, precision, train_data, val_data, progress)
        wall = run.wall_before + time.perf_counter() - started
        save_checkpoint(slot.directory, run.checkpoint(slot.fingerprint, settings, config.out, wall))
        if on_epoch_end is not None:
            on_epoch_end(row["epoch"], row)

    # Outputs: written together, then the checkpoint is no longer needed.
    summary = summarise_run(config, run, settings, device, precision, threads,
                            run.wall_before + time.perf_counter() - started, resumed_from, len(train_set), len(val_set))
    write_outputs(config.out, model_payload(run, summary), run.history, summary)
    shutil.rmtree(slot.directory, ignore_errors=True)
    return summary
