"""Inference speed of the code `unetpp predict` and `unetpp predict-images` run, per architecture.

Times `unetpp.inference.predictor.predict_probabilities` (what `predict` runs
on the processed set) and `predict_images.NativePredictor` in both modes
(what `predict-images` runs per image), on random images with randomly
initialised full-size models: speed does not depend on the weights or the
pixel values. Prints wall seconds per image (median of --repeats runs).

    .venv/bin/python benchmarks/bench_predict.py --n-images 32 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from unetpp.inference.predict_images import NativePredictor
from unetpp.inference.predictor import predict_probabilities
from unetpp.models import ARCHITECTURES, build_model
from unetpp.training.device import resolve_device, resolve_precision


def timed(fn, repeats: int) -> float:
    """Median wall seconds of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), help="architectures to time")
    parser.add_argument("--n-images", type=int, default=32, help="images in the processed-set timing")
    parser.add_argument("--size", type=int, default=96, help="processed image side")
    parser.add_argument("--batch-size", type=int, default=16, help="predict batch size")
    parser.add_argument("--native", default="256x256,520x696", help="native HxW sizes for predict-images timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n_images, args.size, args.size, 3), dtype=np.uint8)
    natives = [tuple(int(v) for v in s.split("x")) for s in args.native.split(",") if s]
    print(
        f"device {device}, precision {precision}, torch threads {torch.get_num_threads()}, "
        f"torch {torch.__version__}; median of {args.repeats} runs after a warm-up"
    )
    header = f"{'arch':<16} {'predict s/img':>14}" + "".join(
        f" {f'{h}x{w} {m} s':>18}" for h, w in natives for m in ("resize", "pad")
    )
    print(header)
    for arch in args.archs:
        torch.manual_seed(0)
        model = build_model(arch).eval().to(device, memory_format=torch.channels_last)
        per_image = (
            timed(
                lambda: predict_probabilities(model, images, device, precision, args.batch_size, progress=False),
                args.repeats,
            )
            / args.n_images
        )
        cells = [f"{arch:<16} {per_image:>14.4f}"]
        for h, w in natives:
            native = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            for mode in ("resize", "pad"):
                predictor = NativePredictor(model, mode, args.size, 16, device, precision)
                seconds = timed(lambda: predictor.probabilities(native), args.repeats)
                cells.append(f" {seconds:>18.4f}")
        print("".join(cells), flush=True)


if __name__ == "__main__":
    main()
