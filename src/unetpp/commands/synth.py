"""`unetpp synth`: a small synthetic dataset in the Kaggle stage1_train layout."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--n", "n", default=24, show_default=True, type=click.IntRange(min=1),
              help="Number of images to make (at least 1).")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output: a zip when it ends in .zip (stored entries, fixed timestamps), otherwise a folder; "
    "either holds <id>/images/<id>.png and <id>/masks/<mask_id>.png.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed; the same seed always gives the same files.")
@click.option(
    "--size",
    "sizes",
    multiple=True,
    metavar="HxW",
    help="Image size to draw from, repeatable (e.g. --size 64x64 --size 64x96); "
    "default 96x96, 96x128, 128x128 and 128x160. Each side at least 16.",
)
def synth(n: int, out: Path, seed: int, sizes: tuple[str, ...]) -> None:
    """Draw blob-like nuclei of three kinds (fluorescent, histology, elongated) on noisy backgrounds."""
    from unetpp.data.synth import DEFAULT_SIZES, parse_size, synthesize

    shapes = tuple(parse_size(text) for text in sizes) or DEFAULT_SIZES
    images = synthesize(n, out, seed=seed, sizes=shapes)
    n_masks = sum(len(image.masks) for image in images)
    click.echo(f"wrote {out}: {len(images)} images, {n_masks} masks")
