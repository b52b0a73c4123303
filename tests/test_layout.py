"""`--layout auto`: measured once per machine, reused, pinned by option, kept on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unetpp import choices
from unetpp.errors import UnetppError
from unetpp.metrics import REDUCTIONS
from unetpp.training import layout as layout_module
from unetpp.training.layout import LAYOUTS, MARGIN, cache_path, choose, machine_key, memory_format, resolve_layout

TINY = {"filters": [4, 8, 8, 8, 8]}
CPU = torch.device("cpu")


def resolve(requested: str = "auto", device: torch.device = CPU, precision: str = "fp32") -> dict:
    return resolve_layout(requested, device, precision, "unet", 2, 32, 1, TINY, progress=False)


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UNETPP_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_the_library_checks_the_lists_the_cli_offers() -> None:
    from unetpp.training import device

    assert LAYOUTS is choices.LAYOUTS and REDUCTIONS is choices.REDUCTIONS and device.PRECISIONS is choices.PRECISIONS


def test_choice_needs_a_clear_margin_for_channels_last() -> None:
    assert choose(1.0, 0.80) == "channels_last"
    assert choose(1.0, MARGIN * 1.0 - 1e-9) == "channels_last"
    assert choose(1.0, MARGIN * 1.0) == "nchw"  # a near-tie goes to the reference layout
    assert choose(1.0, 0.99) == "nchw" and choose(1.0, 1.3) == "nchw"


def test_pinned_gpu_and_bf16_never_measure(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout_module, "measure", lambda *a, **k: pytest.fail("must not measure"))
    assert resolve("nchw") == {"layout": "nchw", "source": "pinned"}
    assert resolve("channels_last")["layout"] == "channels_last"
    assert resolve(precision="bf16") == {"layout": "channels_last", "source": "gpu_or_bf16"}
    assert resolve(device=torch.device("meta")) == {"layout": "channels_last", "source": "gpu_or_bf16"}
    assert not cache_path().exists()
    with pytest.raises(UnetppError, match="--layout 'nhwc' is unknown"):
        resolve("nhwc")


def test_measured_once_then_reused_from_the_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_measure(arch, batch_size, image_size, model_kwargs, progress=None):  # type: ignore[no-untyped-def]
        calls.append(arch)
        return {"layout": "channels_last", "nchw_step_s": 2.0, "channels_last_step_s": 1.0}

    monkeypatch.setattr(layout_module, "measure", fake_measure)
    first = resolve()
    assert first["layout"] == "channels_last" and first["source"] == "measured"
    # A later measurement would say otherwise; the cached decision wins, so runs on one machine agree.
    monkeypatch.setattr(layout_module, "measure", lambda *a, **k: {"layout": "nchw"})
    second = resolve()
    assert second["layout"] == "channels_last" and second["source"] == "cached" and calls == ["unet"]
    entries = json.loads((cache_dir / "layout.json").read_text())
    assert list(entries) == [machine_key("unet", 2, 32, 1, TINY)]
    assert json.loads(list(entries)[0])["capability"] == torch.backends.cpu.get_cpu_capability()


def test_a_real_measurement_times_both_layouts(cache_dir: Path) -> None:
    result = resolve()
    assert result["source"] == "measured" and result["layout"] in ("channels_last", "nchw")
    assert result["nchw_step_s"] > 0 and result["channels_last_step_s"] > 0
    assert result["layout"] == choose(result["nchw_step_s"], result["channels_last_step_s"])


def test_measuring_leaves_the_global_rng_alone(cache_dir: Path) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    resolve()
    assert torch.equal(torch.rand(3), expected)


def test_unreadable_cache_is_measured_again(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cache_dir / "layout.json").write_text("{not json")
    monkeypatch.setattr(layout_module, "measure", lambda *a, **k: {"layout": "nchw", "nchw_step_s": 1.0,
                                                                     "channels_last_step_s": 1.0})
    assert resolve()["layout"] == "nchw"
    assert len(json.loads((cache_dir / "layout.json").read_text())) == 1


def test_memory_format_of_each_layout() -> None:
    assert memory_format("channels_last") == torch.channels_last
    assert memory_format("nchw") == torch.contiguous_format
    with pytest.raises(UnetppError):
        memory_format("auto")
