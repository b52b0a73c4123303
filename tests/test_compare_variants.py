"""unetpp compare-variants: the variants' aggregates side by side, with the native IoU per image kind."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from unetpp.cli import main


def aggregate(iou: float, kinds: dict[str, tuple[float, int]] | None, size: int = 96) -> dict:
    """An aggregate's metrics.json for U-Net and UNet++, one seed each."""
    def arch(offset: float) -> dict:
        mean = {"iou_per_image": iou + offset, "iou_native_per_image": iou + offset - 0.03,
                "dice_per_image": iou + offset + 0.06, "best_epoch": 40, "epochs_run": 60,
                "train_seconds": 600.0, "train_seconds_median_epoch": 540.0, "size": size}
        for kind, (kind_iou, count) in (kinds or {}).items():
            mean[f"iou_native_per_image_{kind}"] = kind_iou + offset
            mean[f"n_images_{kind}"] = count
        return {"mean": mean, "sd": {key: None for key in mean}, "seeds": {"0": mean}}

    pooled = {"mean_diff": 0.01, "ci95_low": -0.002, "ci95_high": 0.021}
    return {"unet": arch(0.0), "nested_unet": arch(0.01), "comparisons": {"nested_unet_vs_unet": {"pooled": pooled}}}


def write(variants_dir: Path, name: str, document: dict) -> None:
    (variants_dir / name).mkdir(parents=True)
    (variants_dir / name / "metrics.json").write_text(json.dumps(document))


def run(variants_dir: Path, tmp_path: Path):
    return CliRunner().invoke(main, ["compare-variants", "--variants-dir", str(variants_dir),
                                     "--out", str(tmp_path / "variants.md"), "--json", str(tmp_path / "v.json")])


def test_the_kind_table_gives_each_kinds_native_iou_and_count(tmp_path):
    variants = tmp_path / "variants"
    write(variants, "reference", aggregate(0.85, {"fluorescence": (0.86, 111), "colour": (0.70, 22)}))
    write(variants, "augment", aggregate(0.86, {"fluorescence": (0.86, 111), "colour": (0.78, 22)}))
    old = aggregate(0.84, None)  # evaluated before the kinds: left out of the kind table
    for arch in ("unet", "nested_unet"):  # and aggregated before the median epoch
        del old[arch]["mean"]["train_seconds_median_epoch"]
    write(variants, "old", old)
    result = run(variants, tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "variants.md").read_text()
    kind_table = text.split("by image kind")[1]
    assert "| variant | architecture | fluorescence | colour |" in kind_table  # only the kinds present
    assert "| reference | U-Net | 0.8600 (111) | 0.7000 (22) |" in kind_table
    assert "| augment | UNet++ | 0.8700 (111) | 0.7900 (22) |" in kind_table
    assert "| old |" not in kind_table
    assert "| old | 96 | U-Net | 0.8100 | 0.8400 | 0.9000 | 40 | 60 | 10.0 min | n/a | 1 |" in text
    # The rows of the main table: reference first, then by name.
    main_table = text.split("UNet++ minus U-Net")[0]
    rows = [line.split(" | ")[0] for line in main_table.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| reference"] * 2 + ["| augment"] * 2 + ["| old"] * 2
    document = json.loads((tmp_path / "v.json").read_text())
    assert document["augment"]["image_kinds"] == {"fluorescence": 111, "colour": 22}
    assert document["old"]["image_kinds"] == {}
    assert document["augment"]["archs"]["unet"]["iou_native_per_image_colour"] == {"mean": 0.78, "sd": None}


def test_no_kind_table_without_kinds(tmp_path):
    variants = tmp_path / "variants"
    write(variants, "reference", aggregate(0.85, None))
    result = run(variants, tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "variants.md").read_text()
    assert "| reference | 96 | U-Net | 0.8200 | 0.8500 | 0.9100 | 40 | 60 | 10.0 min | 9.0 min | 1 |" in text
    assert "by image kind" not in text


def test_an_empty_folder_is_named(tmp_path):
    (tmp_path / "variants").mkdir()
    result = run(tmp_path / "variants", tmp_path)
    assert result.exit_code == 1 and "holds no <variant>/metrics.json" in result.output
    assert not (tmp_path / "variants.md").exists()


def test_one_path_for_two_outputs_is_refused(tmp_path):
    """`--out x --json x` would keep only one of the two; nothing is written."""
    variants = tmp_path / "variants"
    write(variants, "reference", aggregate(0.85, None))
    same = tmp_path / "table.md"
    result = CliRunner().invoke(main, ["compare-variants", "--variants-dir", str(variants), "--out", str(same),
                                       "--json", str(same)])
    assert result.exit_code == 1 and "--out, --json and --html must name different files" in result.output
    assert not same.exists()


def test_the_outputs_are_written_all_or_none(tmp_path, monkeypatch):
    """A failure while rendering the HTML leaves the markdown and JSON of the run before in place."""
    import unetpp.evaluation.variants as variants_module

    variants = tmp_path / "variants"
    write(variants, "reference", aggregate(0.85, None))
    assert run(variants, tmp_path).exit_code == 0
    before = (tmp_path / "variants.md").read_text(), (tmp_path / "v.json").read_text()
    write(variants, "augment", aggregate(0.86, None))

    def broken(markdown: str, title: str) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(variants_module, "markdown_to_html", broken)
    result = CliRunner().invoke(main, ["compare-variants", "--variants-dir", str(variants), "--out",
                                       str(tmp_path / "variants.md"), "--json", str(tmp_path / "v.json"),
                                       "--html", str(tmp_path / "variants.html")])
    assert result.exit_code != 0
    assert ((tmp_path / "variants.md").read_text(), (tmp_path / "v.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json", "variants", "variants.md"]


def test_comparisons_take_the_two_level_interval_with_several_seeds_and_show_sds(tmp_path):
    """One seed: the pooled interval; several: the two-level one (seeds resampled too), and mean ± sd cells."""
    variants = tmp_path / "variants"
    write(variants, "reference", aggregate(0.85, None))  # one seed, pooled: +0.0100 [-0.0020, +0.0210]
    three = aggregate(0.86, None)
    for arch in ("unet", "nested_unet"):
        three[arch]["sd"] = {**three[arch]["sd"], "iou_per_image": 0.0012, "best_epoch": 7.0}
        three[arch]["seeds"] = {"0": {}, "1": {}, "2": {}}
    three["comparisons"]["nested_unet_vs_unet"]["two_level"] = {"mean_diff": -0.0031, "ci95_low": -0.0102,
                                                                "ci95_high": 0.0044}
    write(variants, "seeds3", three)
    result = run(variants, tmp_path)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "variants.md").read_text()
    assert "| reference | UNet++ - U-Net | +0.0100 | [-0.0020, +0.0210] |" in text
    assert "| seeds3 | UNet++ - U-Net | -0.0031 | [-0.0102, +0.0044] |" in text
    assert "| seeds3 | 96 | UNet++ | 0.8400 | 0.8700 ± 0.0012 | 0.9300 | 40 ± 7 | 60 | 10.0 min | 9.0 min | 3 |" in text
    document = json.loads((tmp_path / "v.json").read_text())
    assert document["reference"]["comparisons"]["nested_unet_vs_unet"]["kind"] == "pooled"
    assert document["seeds3"]["comparisons"]["nested_unet_vs_unet"] == {
        "kind": "two_level", "mean_diff": -0.0031, "ci95_low": -0.0102, "ci95_high": 0.0044}
