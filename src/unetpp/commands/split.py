"""`unetpp split`: seeded, deterministic train/val(/test) split of the image ids."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--in",
    "src",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HDF5 with an `ids` dataset, normally the preprocess output (e.g. data/processed/dsb2018_96.h5).",
)
@click.option(
    "--val-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Share of images for validation, in [0, 1); the count is rounded half up (670 x 0.2 = 134).",
)
@click.option(
    "--test-fraction",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of images held out for testing, in [0, 1); 0 means no test set. With --val-fraction, sum below 1.",
)
@click.option(
    "--seed",
    default=41,
    show_default=True,
    type=int,
    help="Seed of numpy.random.default_rng that shuffles the sorted ids; same seed and ids give the same split.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file to write (e.g. data/processed/split.json) with the seed, fractions and train/val/test ids.",
)
def split(src: Path, val_fraction: float, test_fraction: float, seed: int, out: Path) -> None:
    """Split the sorted ids into disjoint train/val/test lists that cover every id."""
    from unetpp.data.split import split as run_split

    result = run_split(src, out, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    sizes = ", ".join(f"{len(result[name])} {name}" for name in ("train", "val", "test"))  # type: ignore[arg-type]
    click.echo(f"wrote {out}: {sizes}")
