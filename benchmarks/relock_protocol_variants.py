"""One-off: rename dvc.lock's stages and paths to the protocol-variant DAG, keeping every hash.

The reference run was recorded before the variants (train@unet-0, models/unet/seed0, results/runs/...,
results/metrics.json). Its outputs were moved with `git mv` (the small ones) to the reference variant's
paths; this script moves its dvc.lock entries the same way, so `dvc status` compares the moved files with
the recorded hashes instead of asking for a retraining:

    python benchmarks/relock_protocol_variants.py            # rewrites dvc.lock in place

Stage names: preprocess -> preprocess@<size>, <stage>@<arch>-<seed> -> <stage>@variant0-<arch>-<seed>,
aggregate -> aggregate@variant0. Commands are the new DAG's where they do the same work (train gains the
reference's defaults `--block vgg --augment none`; split reads the same sorted ids from the interim file, so
split.json is the same bytes), with the hashes of the same files. evaluate keeps its old command (renamed
paths): its outputs lack the native-size figures of `--interim`, so `dvc status` rightly reports it (and
aggregate, compare_variants after it) as changed: rerun them where the predictions are (no retraining).
Code hashes are left as they were (refresh them with `dvc commit -f` where the outputs exist).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

VARIANT = "reference"


def rename_path(path: str) -> str:
    if path == "models":
        return f"models/{VARIANT}"
    if path == "results/runs":
        return f"results/{VARIANT}/runs"
    for old, new in ((r"^models/(?!reference/)", f"models/{VARIANT}/"), (r"^results/runs/", f"results/{VARIANT}/runs/"),
                     (r"^results/(metrics\.json|summary\.md|curves\.png)$", rf"results/variants/{VARIANT}/\1")):
        if re.search(old, path):
            return re.sub(old, new, path)
    return path


def rename_cmd(cmd: str) -> str:
    cmd = re.sub(r"(?<=[ =])models/(?=\w+/seed)", f"models/{VARIANT}/", cmd)
    return cmd.replace("results/runs/", f"results/{VARIANT}/runs/")


def new_name(name: str, size: int) -> str:
    if name == "preprocess":
        return f"preprocess@{size}"
    if name == "aggregate":
        return "aggregate@variant0"
    stage, at, item = name.partition("@")
    return f"{stage}@variant0-{item}" if at and stage in ("train", "predict", "evaluate") else name


def main(root: Path) -> int:
    from dvc.repo import Repo

    lock = yaml.safe_load((root / "dvc.lock").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    reference = params["variants"][VARIANT]
    size = reference["size"]
    with Repo(str(root)) as repo:
        rendered = {stage.name: stage.cmd for stage in repo.index.stages}
    ingest_out = lock["stages"]["ingest"]["outs"][0]
    stages = {}
    for name, entry in lock["stages"].items():
        target = new_name(name, size)
        entry = dict(entry)
        for key in ("deps", "outs"):
            entry[key] = [{**item, "path": rename_path(item["path"])} for item in entry.get(key, [])]
        base = target.split("@")[0]
        if base == "evaluate" or target not in rendered:
            entry["cmd"] = rename_cmd(entry["cmd"])
        else:
            entry["cmd"] = rendered[target]
        values = entry.get("params", {}).get("params.yaml")
        if values is not None:
            values.pop("preprocess.size", None)
            if base == "train":
                values.pop("train.lr", None)
                values.pop("train.batch_size", None)
                values[f"variants.{VARIANT}"] = dict(reference)
            entry["params"]["params.yaml"] = dict(sorted(values.items()))
        if base == "split":
            entry["deps"] = [dict(ingest_out) if d["path"].startswith("data/processed/dsb2018_") else d
                             for d in entry["deps"]]
        stages[target] = entry
    lock["stages"] = dict(sorted(stages.items()))
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False, width=80))
    print("renamed:", ", ".join(f"{a} -> {new_name(a, size)}" for a in lock["stages"] and stages if False) or
          f"{len(stages)} stages written to {root / 'dvc.lock'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
