"""Pack what `gpu_protocol.py --grid` reads into a folder small enough to travel to a GPU machine, and unpack it.

A lent GPU machine gets the working tree and at most 64 MiB in all; the grid
reads the processed 96x96 and 192x192 files (24 + 94 MiB) and, for the
native-size scores, the ingest output (about 600 MiB). The bundle holds:

- `dsb2018_<size>.h5.gz`: each processed file gzipped whole (5 and 19 MiB),
  so unpacking gives back the same bytes, and each train.json the same
  `data_sha256` as a run from the pipeline's own files;
- `split.json`, as it is;
- `stage1_train_val.h5`: the ingest output cut down to what `evaluate
  --interim` reads of the split's validation images: their native-size masks
  (to score against) and, for each image's kind (`unetpp.data.image_kind`,
  which reads only averages), the image shrunk to 32x32 (all 670
  stage1_train images keep their kind; one that did not would be kept whole),
  gzip-compressed, about 1 MiB;
- `MANIFEST.json`: the sha256 of every original, which unpacking checks.

    python benchmarks/gpu_bundle.py pack --processed-dir data/processed --sizes 96 192 \\
        --interim data/interim/stage1_train.h5 --out .gpu_bundle
    PYTHONPATH=src python benchmarks/gpu_bundle.py unpack .gpu_bundle data   # there (no install needed)

`.gpu_bundle` must be ignored by git (`echo /.gpu_bundle/ >> .git/info/exclude`) and named in the device
call's `carry`; its data are never committed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from unetpp.data.image_kind import image_kind
from unetpp.data.processed import file_sha256, read_split

VAL_INTERIM = "stage1_train_val.h5"
KIND_SIDE = 32  # the side of the stand-in images (only their kind is read)
BUDGET_MIB = 54.0  # 64 MiB in all, less the working tree (about 8 MiB) and a margin


def kind_stand_in(image: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image shrunk to KIND_SIDE x KIND_SIDE, or whole if that changed its kind."""
    from skimage.transform import resize

    small = resize(image, (KIND_SIDE, KIND_SIDE, 3), anti_aliasing=True, preserve_range=True)
    small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return small if image_kind(small) == image_kind(image) else image


def write_val_interim(interim: Path, split: Path, out: Path) -> int:
    """The ingest output's layout (ids, images, masks) with the validation images' masks and kind stand-ins."""
    val_ids = read_split(split)["val"]
    with h5py.File(interim, "r") as src, h5py.File(out, "w") as dst:
        absent = [i for i in val_ids if i not in src["masks"] or i not in src["images"]]
        if absent:
            sys.exit(f"{interim} lacks {len(absent)} val image(s) of {split} (e.g. {absent[0]}): pass the "
                     "ingest output the processed files were made from")
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        dst.attrs["subset"] = (
            "the split's val masks, and their images shrunk to 32x32 for their kind (benchmarks/gpu_bundle.py)"
        )
        dst.create_dataset("ids", data=np.array(val_ids, dtype=object), dtype=h5py.string_dtype())
        images, masks = dst.create_group("images"), dst.create_group("masks")  # no labels: not read
        for image_id in val_ids:
            images.create_dataset(image_id, data=kind_stand_in(src["images"][image_id][()]))
            masks.create_dataset(image_id, data=src["masks"][image_id][()], compression="gzip", compression_opts=9)
    return len(val_ids)


def pack(processed_dir: Path, sizes: list[int], interim: Path, out: Path, budget_mib: float) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    split = processed_dir / "split.json"
    manifest: dict[str, str] = {}
    for size in sizes:
        source = processed_dir / f"dsb2018_{size}.h5"
        if not source.exists():
            sys.exit(f"{source} does not exist: run the pipeline's preprocess for size {size} first")
        with open(source, "rb") as fh, gzip.open(out / f"{source.name}.gz", "wb", compresslevel=6) as gz:
            shutil.copyfileobj(fh, gz, 1 << 20)
        manifest[f"processed/{source.name}"] = file_sha256(source)
    shutil.copyfile(split, out / "split.json")
    manifest["processed/split.json"] = file_sha256(split)
    n_val = write_val_interim(interim, split, out / VAL_INTERIM)
    manifest[f"interim/{VAL_INTERIM}"] = file_sha256(out / VAL_INTERIM)
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"{out}: {total:.1f} MiB ({', '.join(sorted(p.name for p in out.iterdir()))}; {n_val} val images)")
    if total > budget_mib:
        sys.exit(f"{out} holds {total:.1f} MiB, over the {budget_mib} MiB a device call can carry beside the tree")
    return manifest


def unpack(bundle: Path, data: Path) -> None:
    manifest = json.loads((bundle / "MANIFEST.json").read_text(encoding="utf-8"))
    for relative, expected in manifest.items():
        target = data / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        gz = bundle / f"{target.name}.gz"
        if gz.exists():
            with gzip.open(gz, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            shutil.copyfile(bundle / target.name, target)
        if file_sha256(target) != expected:
            sys.exit(f"{target}: sha256 differs from {bundle / 'MANIFEST.json'}; pack the bundle again")
        print(f"{target}: sha256 {expected[:12]}... as packed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="write the bundle")
    packing.add_argument("--processed-dir", type=Path, default=Path("data/processed"),
                         help="holds dsb2018_<size>.h5 and split.json [data/processed]")
    packing.add_argument("--sizes", type=int, nargs="+", default=[96, 192], help="input sizes to take [96 192]")
    packing.add_argument("--interim", type=Path, default=Path("data/interim/stage1_train.h5"),
                         help="the ingest output [data/interim/stage1_train.h5]")
    packing.add_argument("--out", type=Path, default=Path(".gpu_bundle"), help="the bundle folder [.gpu_bundle]")
    packing.add_argument("--budget-mib", type=float, default=BUDGET_MIB,
                         help=f"fail above this size [{BUDGET_MIB}]")
    unpacking = commands.add_parser("unpack", help="restore the files under DATA, checked against the manifest")
    unpacking.add_argument("bundle", type=Path)
    unpacking.add_argument("data", type=Path, help="e.g. data: gives data/processed/... and data/interim/...")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.processed_dir, args.sizes, args.interim, args.out, args.budget_mib)
    else:
        unpack(args.bundle, args.data)


if __name__ == "__main__":
    main()
