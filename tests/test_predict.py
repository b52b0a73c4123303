"""`unetpp predict` and the model loader behind it."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers_inference import write_model, write_processed, write_split
from unetpp.cli import main
from unetpp.commands.predict import predict
from unetpp.errors import UnetppError
from unetpp.inference.loading import load_trained_model
from unetpp.inference.predict import run_predict, to_float16
from unetpp.models import build_model

VAL = ["img005", "img001", "img007", "img003", "img006"]  # deliberately not sorted
TRAIN = ["img000", "img002", "img004"]


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    h5 = tmp_path / "p.h5"
    write_processed(h5)
    split = tmp_path / "split.json"
    write_split(split, TRAIN, VAL)
    model = tmp_path / "model.pt"
    write_model(model, "unet")
    return {"h5": h5, "split": split, "model": model, "dir": tmp_path}


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def only_inputs(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_choices_are_what_the_trained_models_offer():
    (option,) = [p for p in predict.params if p.name == "inference_output"]
    assert tuple(option.type.choices) == build_model("nested_unet_ds").inference_choices


def test_predict_writes_probabilities_ids_and_figure(setup):
    out, fig = setup["dir"] / "res" / "predictions.h5", setup["dir"] / "res" / "samples.png"
    result = cli(
        "predict",
        "--model",
        setup["model"],
        "--data",
        setup["h5"],
        "--split",
        setup["split"],
        "--subset",
        "val",
        "--out",
        out,
        "--figure",
        fig,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batch-size",
        "2",
    )
    assert result.exit_code == 0, result.output
    with h5py.File(out) as f:
        probs = f["probabilities"][()]
        ids = [x.decode() for x in f["ids"][()]]
        assert f.attrs["arch"] == "unet" and f.attrs["subset"] == "val"
    assert probs.dtype == np.float16 and probs.shape == (5, 32, 32)
    assert ids == VAL  # split order, not sorted
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    # The stored values are the model's sigmoid output for the split's rows.
    model, _ = load_trained_model(setup["model"], "cpu")
    with h5py.File(setup["h5"]) as f:
        image = f["images"][5]
    x = torch.from_numpy(image[None]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = torch.sigmoid(model(x))[0, 0].numpy()
    np.testing.assert_allclose(probs[0].astype(np.float32), expected, atol=1e-3)
    png = fig.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert only_inputs(out.parent) == ["predictions.h5", "samples.png"]  # no temp files left


def test_batch_size_does_not_change_result(setup):
    outs = []
    for bs in (1, 5):
        out = setup["dir"] / f"bs{bs}.h5"
        run_predict(
            setup["model"],
            setup["h5"],
            setup["split"],
            "val",
            out,
            device="cpu",
            precision="fp32",
            batch_size=bs,
            progress=False,
        )
        with h5py.File(out) as f:
            outs.append(f["probabilities"][()].astype(np.float32))
    np.testing.assert_allclose(outs[0], outs[1], atol=2e-3)


def test_figure_ids_and_default_choice(setup):
    res = run_predict(
        setup["model"],
        setup["h5"],
        setup["split"],
        "val",
        setup["dir"] / "a.h5",
        figure=setup["dir"] / "a.png",
        device="cpu",
        precision="fp32",
        progress=False,
    )
    assert res.figure_ids == ["img001", "img003", "img005", "img006"]  # first 4 of the subset, sorted
    res = run_predict(
        setup["model"],
        setup["h5"],
        setup["split"],
        "val",
        setup["dir"] / "b.h5",
        figure=setup["dir"] / "b.png",
        figure_ids=["img007", "img001"],
        device="cpu",
        precision="fp32",
        progress=False,
    )
    assert res.figure_ids == ["img007", "img001"]


def test_deep_supervision_outputs(setup):
    model_path = setup["dir"] / "ds.pt"
    write_model(model_path, "nested_unet_ds")
    results = {}
    for mode in ("last", "mean", "L1"):
        out = setup["dir"] / f"ds_{mode}.h5"
        res = cli(
            "predict",
            "--model",
            model_path,
            "--data",
            setup["h5"],
            "--split",
            setup["split"],
            "--out",
            out,
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--inference-output",
            mode,
        )
        assert res.exit_code == 0, res.output
        with h5py.File(out) as f:
            results[mode] = f["probabilities"][()].astype(np.float32)
            assert f.attrs["inference_output"] == mode
    assert not np.allclose(results["last"], results["L1"])  # different heads really were used
    assert not np.allclose(results["last"], results["mean"])


@pytest.mark.parametrize("arch", ["unet", "nested_unet"])
def test_inference_output_needs_deep_supervision(setup, arch):
    model_path = setup["dir"] / f"{arch}.pt"
    write_model(model_path, arch)
    out = setup["dir"] / "res" / "p.h5"
    res = cli(
        "predict",
        "--model",
        model_path,
        "--data",
        setup["h5"],
        "--split",
        setup["split"],
        "--out",
        out,
        "--figure",
        setup["dir"] / "res" / "f.png",
        "--device",
        "cpu",
        "--inference-output",
        "L2",
    )
    assert res.exit_code == 1
    assert "--inference-output L2" in res.output and str(model_path) in res.output and "last" in res.output
    assert not (setup["dir"] / "res").exists() or only_inputs(setup["dir"] / "res") == []


def test_bad_inputs_give_clear_errors_and_no_output(setup, tmp_path):
    out = tmp_path / "res" / "p.h5"
    fig = tmp_path / "res" / "f.png"
    base = [
        "predict",
        "--data",
        setup["h5"],
        "--split",
        setup["split"],
        "--out",
        out,
        "--figure",
        fig,
        "--device",
        "cpu",
    ]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file at all")
    wrong_keys = tmp_path / "wrong.pt"
    torch.save({"weights": {}}, wrong_keys)
    mismatched = tmp_path / "mismatch.pt"
    ckpt = torch.load(setup["model"], weights_only=True)
    ckpt["arch"] = "nested_unet"
    torch.save(ckpt, mismatched)
    cases = [
        (["--model", tmp_path / "missing.pt"], "does not exist"),
        (["--model", corrupt], "cannot be read"),
        (["--model", wrong_keys], "lacks the key(s) state_dict, arch, model_kwargs"),
        (["--model", mismatched], "do not fit architecture 'nested_unet'"),
        (["--model", setup["model"], "--figure-ids", "img000"], "not in the 'val' subset"),
        (["--model", setup["model"], "--batch-size", "0"], "Invalid value for '--batch-size': 0 is not in the range"),
        (["--model", setup["model"], "--figure-count", "0"], "Invalid value for '--figure-count': 0 is not in"),
        (["--model", setup["model"], "--subset", "test"], "has no 'test' ids"),
        (["--model", setup["model"], "--device", "cuda:7"], "--device cuda:7"),
    ]
    for extra, message in cases:
        res = cli(*base, *extra)
        assert res.exit_code == (2 if message.startswith("Invalid value") else 1), (extra, res.output)
        assert message in res.output, (extra, res.output)
        assert "Traceback" not in res.output
        assert not out.exists() and not fig.exists()
        assert not out.parent.exists() or only_inputs(out.parent) == []


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_refused_model_file_gets_no_weights_only_false_advice(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": _RunsCode()}, evil)
    with pytest.raises(UnetppError) as refused:
        load_trained_model(evil, "cpu")
    assert refused.value.message == (
        f"model file {evil} cannot be read as a unetpp checkpoint (it holds the Python object print, "
        "which a safe load refuses and never runs): it is corrupt or not a model.pt written by `unetpp train`; "
        "retrain it with `unetpp train` (or `snakemake`/`dvc repro`)"
    )
    assert refused.value.__cause__ is None and "this must never run" not in capsys.readouterr().out


def test_missing_data_file_names_it(setup, tmp_path):
    with pytest.raises(UnetppError, match="nope.h5 does not exist"):
        run_predict(setup["model"], tmp_path / "nope.h5", setup["split"], "val", tmp_path / "o.h5", device="cpu")
    assert not (tmp_path / "o.h5").exists()


def test_loader_returns_eval_model_and_checkpoint(setup):
    model, ckpt = load_trained_model(setup["model"], "cpu")
    assert not model.training and ckpt["arch"] == "unet" and ckpt["best_epoch"] == 1


@pytest.mark.parametrize("arch", ["unet", "nested_unet_ds"])
def test_the_block_recorded_in_model_pt_is_rebuilt(tmp_path, arch):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    written = write_model(tmp_path / "authors.pt", arch, block="authors")
    model, ckpt = load_trained_model(tmp_path / "authors.pt", "cpu")
    assert model.block == "authors" and ckpt["block"] == "authors"
    with torch.no_grad():
        torch.testing.assert_close(model(x), written(x))
    # A file from before --block (no such key) is the vgg block.
    write_model(tmp_path / "old.pt", arch)
    assert load_trained_model(tmp_path / "old.pt", "cpu")[0].block == "vgg"
    checkpoint = torch.load(tmp_path / "authors.pt", weights_only=True)
    torch.save({**checkpoint, "block": "resnet"}, tmp_path / "bad.pt")
    with pytest.raises(UnetppError, match=r"bad.pt names block 'resnet', which this version does not know"):
        load_trained_model(tmp_path / "bad.pt", "cpu")
    torch.save({**checkpoint, "block": "vgg"}, tmp_path / "wrong.pt")  # weights of the other block: refused
    with pytest.raises(UnetppError, match=r"wrong.pt: its weights do not fit"):
        load_trained_model(tmp_path / "wrong.pt", "cpu")


def test_float16_storage_keeps_the_threshold():
    p = np.array([0.5, 0.50001, 0.5002, 0.49999, 0.9999, 1e-7, 0.5005], dtype=np.float32)
    stored = to_float16(p)
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(stored > 0.5, p > 0.5)
    # A plain cast would flip the two values just above 0.5 to background.
    assert (p.astype(np.float16) > 0.5).sum() == (p > 0.5).sum() - 2
    np.testing.assert_allclose(stored.astype(np.float32), p, atol=5e-4)
