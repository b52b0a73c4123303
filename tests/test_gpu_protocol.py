"""benchmarks/gpu_protocol.py on CPU: 1 epoch on synthetic data, every (arch, seed), one archive back."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_protocol.py"


def run_script(tmp_path: Path, h5: Path, split: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--data", str(h5), "--split", str(split), "--work", str(tmp_path / "run"),
           "--archive", str(tmp_path / "out" / "gpu_results.tar.gz"), "--epochs", "1", "--threads", "1", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_every_arch_and_seed_is_trained_evaluated_aggregated_and_packed(
    tmp_path: Path, synthetic_processed_h5: Path, synthetic_split_json: Path
) -> None:
    proc = run_script(tmp_path, synthetic_processed_h5, synthetic_split_json, "--seed", "0", "--seed", "1",
                      "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aggregated seeds [0, 1] of [0, 1]" in proc.stdout
    with tarfile.open(tmp_path / "out" / "gpu_results.tar.gz") as tar:
        names = set(tar.getnames())
    for arch in ("unet", "nested_unet", "nested_unet_ds"):
        for seed in (0, 1):
            for name in ("models/{a}/seed{s}/history.csv", "models/{a}/seed{s}/train.json",
                         "results/{a}/seed{s}/metrics.json", "results/{a}/seed{s}/per_image.csv",
                         "results/{a}/seed{s}/samples.png", "logs/{a}-seed{s}.log"):
                assert "run/" + name.format(a=arch, s=seed) in names
    assert {"run/results/metrics.json", "run/results/summary.md", "run/results/curves.png"} <= names
    assert not any(n.endswith((".pt", ".h5")) for n in names)  # models and predictions stay behind
    metrics = json.loads((tmp_path / "run/results/metrics.json").read_text())
    assert sorted(metrics["unet"]["seeds"]) == ["0", "1"] and metrics["unet"]["sd"]["iou_per_image"] is not None
    train = json.loads((tmp_path / "run/models/nested_unet/seed1/train.json").read_text())
    assert (train["seed"], train["epochs_run"], train["selection_metric"]) == (1, 1, "batch_pooled")


@pytest.mark.slow
def test_a_deadline_stops_the_jobs_and_still_packs_what_there_is(
    tmp_path: Path, synthetic_processed_h5: Path, synthetic_split_json: Path
) -> None:
    # 61 s leaves 1 s before the script's own minute of packing: the first jobs start and are stopped.
    proc = run_script(tmp_path, synthetic_processed_h5, synthetic_split_json, "--seed", "0", "--arch", "unet",
                      "--epochs", "200", "--deadline", "61")
    assert proc.returncode == 1
    assert "unet seed 0: NOT done" in proc.stdout and "aggregated seeds [] of [0]" in proc.stdout
    with tarfile.open(tmp_path / "out" / "gpu_results.tar.gz") as tar:
        names = tar.getnames()
    assert "run/logs/unet-seed0.log" in names and "run/results/metrics.json" not in names


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_protocol", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_relative_paths_are_taken_from_the_directory_it_was_started_from(tmp_path):
    script = load_script()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.h5").write_bytes(b"x")
    (tmp_path / "data" / "split.json").write_text("{}")
    args = script.build_parser().parse_args(
        ["--data", "data/d.h5", "--split", str(tmp_path / "data" / "split.json"), "--work", "run",
         "--archive", "../out/a.tar.gz"]
    )
    args = script.resolve_paths(args, tmp_path)
    assert (args.data, args.split, args.work, args.archive) == (
        tmp_path / "data" / "d.h5", tmp_path / "data" / "split.json", tmp_path / "run", tmp_path / "../out/a.tar.gz"
    )
    missing = script.build_parser().parse_args(["--data", "nope.h5", "--split", "data/split.json", "--work", "w",
                                                "--archive", "a.tar.gz"])
    with pytest.raises(SystemExit, match=f"--data {tmp_path / 'nope.h5'} does not exist"):
        script.resolve_paths(missing, tmp_path)


@pytest.mark.slow
def test_a_copy_outside_any_checkout_runs_from_relative_paths_and_records_the_given_commit(
    tmp_path: Path, synthetic_processed_h5: Path, synthetic_split_json: Path
) -> None:
    # The GPU machine's set-up: src/ and benchmarks/ copied outside a checkout, data beside them, relative paths.
    copy = tmp_path / "copy"
    shutil.copytree(SCRIPT.parents[1] / "src" / "unetpp", copy / "src" / "unetpp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "benchmarks").mkdir()
    shutil.copy(SCRIPT, copy / "benchmarks" / SCRIPT.name)
    (tmp_path / "data").mkdir()
    shutil.copy(synthetic_processed_h5, tmp_path / "data" / "d.h5")
    shutil.copy(synthetic_split_json, tmp_path / "data" / "split.json")
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    cmd = [sys.executable, "copy/benchmarks/gpu_protocol.py", "--data", "data/d.h5", "--split", "data/split.json",
           "--work", "run", "--archive", "out/r.tar.gz", "--arch", "unet", "--seed", "0", "--epochs", "1",
           "--threads", "1", "--jobs", "1", "--source-commit", "78af85b"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aggregated seeds [0] of [0]" in proc.stdout and (tmp_path / "out" / "r.tar.gz").is_file()
    train = json.loads((tmp_path / "run/models/unet/seed0/train.json").read_text())
    assert train["git_commit"]["sha"] == "78af85b" and train["git_commit"]["source"] == "UNETPP_SOURCE_COMMIT"
    assert "is not inside a git checkout" in train["git_commit"]["checkout"]  # the copy's own checkout: none


def test_the_scripts_variants_are_params_yaml_s():
    import yaml

    spec = importlib.util.spec_from_file_location("gpu_protocol", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    declared = yaml.safe_load((SCRIPT.parents[1] / "params.yaml").read_text())["variants"]
    assert {name: {k: v for k, v in values.items() if k != "name"} for name, values in declared.items()} == (
        script.VARIANTS)


@pytest.mark.slow
def test_two_variants_train_aggregate_and_compare(
    tmp_path: Path, synthetic_processed_h5: Path, synthetic_split_json: Path, synthetic_interim_h5: Path
) -> None:
    # Both variants train at the reference's size, 96: the pattern's file is the 32x32 synthetic set.
    data = tmp_path / "data"
    data.mkdir()
    (data / "set_96.h5").symlink_to(synthetic_processed_h5)
    proc = run_script(tmp_path, data / "set_{size}.h5", synthetic_split_json, "--variant", "reference",
                      "--variant", "authors", "--arch", "unet", "--seed", "0", "--interim", str(synthetic_interim_h5))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aggregated {'reference': [0], 'authors': [0]}" in proc.stdout
    table = json.loads((tmp_path / "run/results/variants.json").read_text())
    assert list(table) == ["reference", "authors"]
    train = json.loads((tmp_path / "run/models/authors/unet/seed0/train.json").read_text())
    assert train["block"] == "authors" and train["augment"] == "none"
    with tarfile.open(tmp_path / "out" / "gpu_results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"run/results/variants.md", "run/results/variants/authors/summary.md"} <= names


def test_cuda_graph_reaches_every_training(tmp_path: Path, synthetic_processed_h5: Path, synthetic_split_json: Path):
    # Without CUDA the training refuses it (a CUDA-only option) before any work; with CUDA it trains.
    import torch

    proc = run_script(tmp_path, synthetic_processed_h5, synthetic_split_json, "--arch", "unet", "--seed", "0",
                      "--cuda-graph")
    log = (tmp_path / "run" / "logs" / "unet-seed0.log").read_text()
    assert " train " in log and " --cuda-graph " in log
    model_dir = tmp_path / "run" / "models" / "unet" / "seed0"
    if torch.cuda.is_available():
        assert proc.returncode == 0, log
        assert json.loads((model_dir / "train.json").read_text())["settings"]["cuda_graph"] is True
    else:
        assert proc.returncode != 0
        assert "--cuda-graph needs a CUDA device" in log
        assert not (model_dir / "model.pt").exists()


def test_a_rerun_skips_what_an_earlier_call_finished(tmp_path, monkeypatch):
    # A trained model whose evaluation was cut short: predict and evaluate run again, training does not;
    # a run with every aggregate input runs nothing.
    script = load_script()
    ran: list[str] = []
    monkeypatch.setattr(script, "run_logged", lambda cmd, log, env, deadline: ran.append(cmd[3]) or True)
    (tmp_path / "d.h5").write_text("x")
    (tmp_path / "s.json").write_text("x")
    args = script.resolve_paths(script.build_parser().parse_args(
        ["--data", "d.h5", "--split", "s.json", "--work", "w", "--archive", "a.tar.gz"]), tmp_path)
    model_dir, result_dir, _ = script.run_dirs(args, "unet", 0)
    model_dir.mkdir(parents=True)
    for name in ("model.pt", "train.json", "history.csv"):
        (model_dir / name).write_text("x")
    assert script.one_run("unet", 0, args, {}, float("inf"))
    assert ran == ["predict", "evaluate"]
    result_dir.mkdir(parents=True)
    for name in ("metrics.json", "per_image.csv"):
        (result_dir / name).write_text("x")
    ran.clear()
    assert script.one_run("unet", 0, args, {}, float("inf")) and ran == []
