"""`unetpp compare-variants`: options only; the work is in `unetpp.evaluation.variants`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--variants-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding <variant>/metrics.json, one `unetpp aggregate --out` per variant (results/variants).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Markdown table to write (results/variants.md).",
)
@click.option(
    "--json",
    "json_out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON to write (results/variants.json): {variant: {size, image_kinds: {kind: n_images}, archs: {arch: "
    "{figure: {mean, sd}, n_seeds}}, comparisons}} (docs/DESIGN.md lists the figures).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the table rendered to HTML (results/variants.html; the report's landing text includes it).",
)
def compare_variants(variants_dir: Path, out: Path, json_out: Path, html_out: Path | None) -> None:
    """Set every variant's aggregate side by side: IoU at native size and at the variant's size, Dice, epochs,
    time, and UNet++ - U-Net with its interval, per variant (reference first, then by name)."""
    from unetpp.evaluation.variants import compare_variants as run

    document = run(variants_dir, out, json_out, html_out)
    written = ", ".join(str(path) for path in (out, json_out, html_out) if path is not None)
    click.echo(f"wrote {written}: {len(document)} variant(s) ({', '.join(document)})")
