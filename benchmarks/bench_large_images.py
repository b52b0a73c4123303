"""Block-averaged downscale vs `resize_image` in `predict-images` / `predict-test`: time and peak memory.

Each measurement runs in its own process (peak RSS is per process), with an
untrained full-size model (speed does not depend on the weights), once with
the old path (`preprocess.resize_image` for every image) and once with the new
one (`inference.downscale.downscale_image`), back to back so both see the same
machine load:

- `predict-images` on one 3000x4000 RGB PNG (a real colour stage1_train image
  enlarged; nuclei texture at that size is what a microscope tile looks like);
- `predict-images` and `predict-test` on stage1_test_images.zip's 65 images.

    .venv/bin/python benchmarks/bench_large_images.py --test-zip ../shared/data/dsb2018/stage1_test_images.zip \
        --train-zip ../shared/data/dsb2018/stage1_train.zip --threads 2 [--size 32 --large-only]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def make_model(path: Path, size: int) -> None:
    import torch

    from unetpp.models import build_model

    torch.manual_seed(0)
    model = build_model("unet")
    torch.save({"state_dict": model.state_dict(), "arch": "unet", "model_kwargs": {},
                "settings": {"image_size": size}, "best_epoch": 0, "best_val_iou": 0.0}, path)


def make_large_png(train_zip: Path, path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(train_zip) as archive:
        for name in sorted(archive.namelist()):
            if "/images/" in name:
                image = np.asarray(Image.open(io.BytesIO(archive.read(name))))[..., :3]
                if not ((image[..., 0] == image[..., 1]).all() and (image[..., 0] == image[..., 2]).all()):
                    break  # the first true-colour image: the grey shortcut must not flatter the old path
    Image.fromarray(image).resize((4000, 3000), Image.BICUBIC).save(path)


def child(args: argparse.Namespace) -> None:
    """One measurement; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    import unetpp.inference.predict_images as predict_images
    from unetpp.data.preprocess import resize_image

    if args.variant == "old":
        predict_images.downscale_image = resize_image
    start = time.perf_counter()
    if args.what == "predict-test":
        from unetpp.inference.test_set import run_predict_test

        result = run_predict_test(args.model, args.input, args.out, device="cpu", precision="fp32", progress=False)
        n = result.n_images
    else:
        n = len(predict_images.run_predict_images(args.model, [args.input], args.out, device="cpu", precision="fp32",
                                                  progress=False).written)
    seconds = time.perf_counter() - start
    print(json.dumps({"what": args.what, "input": Path(args.input).name, "variant": args.variant, "images": n,
                      "seconds": round(seconds, 2), "images_per_s": round(n / seconds, 3),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-zip", type=Path, required=True)
    parser.add_argument("--train-zip", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=96, help="training size recorded in the model (96 or e.g. 32)")
    parser.add_argument("--large-only", action="store_true", help="only the 3000x4000 image")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--what", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--input", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_model(tmp / "model.pt", args.size)
        make_large_png(args.train_zip, tmp / "large_3000x4000.png")
        test_dir = tmp / "test_images"
        with zipfile.ZipFile(args.test_zip) as archive:
            images = [n for n in archive.namelist() if "/images/" in n and n.endswith(".png")]
            test_dir.mkdir()
            for name in images:
                (test_dir / Path(name).name).write_bytes(archive.read(name))
        jobs = [("predict-images", tmp / "large_3000x4000.png"), ("predict-images", test_dir),
                ("predict-test", args.test_zip)][: 1 if args.large_only else 3]
        print(f"load average before: {os.getloadavg()}", file=sys.stderr)
        for what, source in jobs:
            for variant in ("old", "new"):
                out = tmp / f"out-{what}-{variant}"
                subprocess.run([sys.executable, __file__, "--child", "--what", what, "--variant", variant,
                                "--model", str(tmp / "model.pt"), "--input", str(source), "--out", str(out),
                                "--threads", str(args.threads), "--test-zip", "-", "--train-zip", "-"], check=True)
                print(f"load average: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
