"""`unetpp bench-train` with tiny settings: it runs, prints and writes the promised fields, refuses bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from unetpp.benchmarking.peak import gemm_gflops
from unetpp.benchmarking.paths import StepPath, build_for_path, default_path, reference_path
from unetpp.benchmarking.train_steps import count_train_step_flops, time_train_steps
from unetpp.cli import main
from unetpp.errors import UnetppError
from unetpp.models import build_model
from unetpp.models.flops import count_forward_flops
from unetpp.training.config import TrainConfig
from unetpp.training.device import resolve_precision
from unetpp.training.layout import resolve_layout

TINY = ["--size", "32", "--batch-size", "2", "--warmup", "0", "--allow-few-steps", "--no-progress", "--no-peak"]


def test_cli_tiny_run_prints_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench-train", "--arch", "unet", "--steps", "2", *TINY, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "| unet |" in result.output and "speed-up" in result.output
    assert "paths interleaved step by step, each in a process of its own" in result.output
    assert "this process (layout choice, inference) and the default path: allocator: " in result.output
    assert "| nested_unet_ds | L3 |" in result.output
    data = json.loads(out.read_text())
    assert data["settings"]["steps"] == 2 and data["settings"]["size"] == 32
    (row,) = data["train"]
    assert row["arch"] == "unet"
    for name in ("reference", "default"):
        assert len(row[name]["step_times_s"]) == 2
        assert row[name]["median_step_s"] > 0 and row[name]["gflops_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["reference"]["median_step_s"] / row["default"]["median_step_s"])
    # The default path trains in the precision and layout `unetpp train --precision auto --layout auto` takes on
    # this machine: in fp32 (no native bf16) the layout measured by bench-train itself, now cached; with native
    # bf16 (e.g. Zen 4) always channels_last, nothing measured.
    precision = resolve_precision("auto", torch.device("cpu"))
    chosen = resolve_layout("auto", torch.device("cpu"), precision, "unet", 2, 32, data["settings"]["threads"], {})
    assert chosen["source"] == ("cached" if precision == "fp32" else "gpu_or_bf16")
    source = "measured" if precision == "fp32" else "gpu_or_bf16"
    assert row["reference"]["channels_last"] is False
    assert row["default"]["channels_last"] is (chosen["layout"] == "channels_last")
    assert f"unet {precision}, eager, {'channels_last' if row['default']['channels_last'] else 'NCHW'} ({source})" in (
        result.output)
    assert row["reference"]["precision"] == "fp32"
    assert "freed memory kept" in row["default"]["setup"] and "kept" not in row["reference"]["setup"]
    assert row["default"]["precision"] == precision
    cases = [(r["arch"], r["output"]) for r in data["inference"]]
    assert cases == [("unet", "last")] + [("nested_unet_ds", f"L{k}") for k in range(1, 5)]
    gflops = [r["gflop_per_image"] for r in data["inference"][1:]]
    assert gflops == sorted(gflops) and gflops[0] < gflops[-1]  # pruning really removes work
    assert all(r["images_per_s"] > 0 for r in data["inference"])
    assert data["machine"]["torch_version"] == str(torch.__version__)


def test_cli_also_times_a_variant_beside_the_two_paths(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench-train", "--arch", "unet", "--steps", "1", "--no-inference", "--also", "channels_last_fp32"]
    result = CliRunner().invoke(main, [*args, *TINY, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "| unet | channels_last_fp32 | fp32, eager, channels_last |" in result.output
    (variant,) = json.loads(out.read_text())["train"][0]["variants"]
    assert variant["path"] == "channels_last_fp32" and variant["channels_last"] is True
    assert len(variant["step_times_s"]) == 1 and variant["speedup"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "5"], "--steps 5 is too few"),
        (["--size", "40"], "multiple of 16"),
        (["--threads", "0"], "Invalid value for '--threads': 0 is not in the range x>=1"),
        (["--warmup", "-1"], "Invalid value for '--warmup': -1 is not in the range x>=0"),
    ],
)
def test_cli_refuses_bad_values(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["bench-train", "--arch", "unet", "--no-inference", *args])
    assert result.exit_code == (2 if "Invalid value" in message else 1)
    assert message in result.output


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_step_flops_are_forward_plus_both_gradients(arch: str) -> None:
    """Every conv costs its forward again for the weight gradient and again for the input gradient,
    except the first one, whose input (the image) needs no gradient."""
    batch, size = 2, 32
    forward = count_forward_flops(build_model(arch), (batch, 3, size, size))
    if arch == "nested_unet_ds":  # training mode runs all four heads, eval mode ("last") only one
        forward += 3 * 2 * batch * size * size * 32
    first_conv = 2 * batch * size * size * 3 * 32 * 9
    assert count_train_step_flops(arch, batch, size) == 3 * forward - first_conv


def test_timing_interleaves_paths_from_the_same_weights() -> None:
    device = torch.device("cpu")
    kwargs = {"filters": (4, 8, 8, 8, 8)}
    channels_last = StepPath("channels_last", "fp32", True)
    ref, cl = (build_for_path("unet", p, device, 3, kwargs)[0] for p in (reference_path(), channels_last))
    for a, b in zip(ref.state_dict().values(), cl.state_dict().values()):
        assert torch.equal(a, b)
    assert cl.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not ref.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    timings = time_train_steps("unet", [reference_path(), channels_last], device, steps=3, warmup=1,
                               batch_size=2, size=32, model_kwargs=kwargs, progress=False)
    assert [t.path.name for t in timings] == ["reference", "channels_last"]
    assert all(len(t.times) == 3 and min(t.times) > 0 for t in timings)


def test_isolated_paths_run_in_their_own_processes_and_report_their_errors() -> None:
    device = torch.device("cpu")
    kept = StepPath("kept", "fp32", False, keep_freed_memory=True)
    timings = time_train_steps("unet", [reference_path(), kept], device, steps=2, warmup=0, batch_size=2, size=32,
                               model_kwargs={"filters": (4, 8, 8, 8, 8)}, progress=False, isolate=True)
    assert [(t.path.name, len(t.times)) for t in timings] == [("reference", 2), ("kept", 2)]
    assert all(min(t.times) > 0 for t in timings)
    # A failure inside a worker (here: no CUDA in this torch build, met only when the worker moves its data)
    # comes back with its traceback instead of hanging the benchmark.
    if torch.cuda.is_available():
        return
    with pytest.raises(UnetppError, match=r"(?s)the reference path failed in its worker process:.*Traceback.*CUDA"):
        time_train_steps("unet", [reference_path()], torch.device("cuda"), steps=1, warmup=0, batch_size=2,
                         size=32, model_kwargs={"filters": (4, 8, 8, 8, 8)}, progress=False, isolate=True)


def test_gemm_rate_is_measured_for_both_precisions() -> None:
    for dtype in (torch.float32, torch.bfloat16):
        rate = gemm_gflops(dtype, torch.device("cpu"), n=64, repeats=2)
        assert 0 < rate < 1e5  # GFLOP/s: positive and physically plausible for one CPU


def test_default_path_is_what_unetpp_train_runs(
    synthetic_processed_h5: Path, synthetic_split_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spy on the training loop's own train_step calls and compare with the benchmark's default set-up."""
    from unetpp.training import loop

    seen: list[dict[str, object]] = []
    original = loop.train_step

    def spy(model, optimizer, images, masks, precision):  # type: ignore[no-untyped-def]
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        seen.append({
            "precision": precision,
            "input_channels_last": images.is_contiguous(memory_format=torch.channels_last),
            "weight_channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
            "optimizer": type(optimizer),
            "defaults": {k: v for k, v in optimizer.defaults.items() if k != "lr"},
        })
        return original(model, optimizer, images, masks, precision)

    monkeypatch.setattr(loop, "train_step", spy)
    kwargs = {"filters": (4, 8, 8, 8, 8)}
    config = TrainConfig(data=synthetic_processed_h5, split=synthetic_split_json, arch="unet",
                         out=tmp_path / "out", epochs=1, batch_size=4, model_kwargs=kwargs,
                         checkpoint_dir=tmp_path / "ckpt")
    loop.train(config, progress=False)

    device = torch.device("cpu")
    path = default_path(device, "unet", 4, 32, torch.get_num_threads(), kwargs)
    model, optimizer = build_for_path("unet", path, device, 0, kwargs)
    conv = model.encoder[0][0]
    expected = {
        "precision": path.precision,
        "input_channels_last": path.channels_last,
        "weight_channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
        "optimizer": type(optimizer),
        "defaults": {k: v for k, v in optimizer.defaults.items() if k != "lr"},
    }
    assert seen and all(call == expected for call in seen), (seen[0], expected)
