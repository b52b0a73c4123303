"""`unetpp fetch`: download the raw stage1_train when it is missing; check it is the expected release."""

from __future__ import annotations

import re
from pathlib import Path

import click

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _digest(ctx: click.Context, param: click.Parameter, value: str) -> str:
    value = value.strip().lower()
    if value != "any" and not _HEX64.match(value):
        raise click.BadParameter(f"{value!r} is neither 64 hex digits nor `any`.", ctx=ctx, param=param)
    return value


@click.command()
@click.option(
    "--raw",
    required=True,
    type=click.Path(path_type=Path),
    help="Where the data is or goes (e.g. data/raw/stage1_train.zip): a zip or an unpacked folder there, or a "
    "symlink to one, is used as it is and never downloaded over; when nothing is there the zip is downloaded to it.",
)
@click.option(
    "--url",
    required=True,
    help="Where to download the zip from when --raw is missing "
    "(BBBC038v1: https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip).",
)
@click.option(
    "--content-sha256",
    "content_sha256",
    required=True,
    callback=_digest,
    help="The expected content digest (sha256 over the sorted names and sha256s of the image and mask members; "
    "see unetpp.data.content), or `any` to accept any data in the stage1_train layout.",
)
@click.option("--images", type=click.IntRange(min=1),
              help="Expected number of images (670); needed with a digest, ignored with --content-sha256 any.")
@click.option("--masks", type=click.IntRange(min=1),
              help="Expected number of masks (29461); needed with a digest, ignored with --content-sha256 any.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON record of the check (digest, counts, origin) that ingest depends on, "
    "e.g. data/raw/stage1_train.verified.json.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for the server to connect or send the next bytes.",
)
def fetch(raw: Path, url: str, content_sha256: str, images: int | None, masks: int | None, out: Path,
          timeout: float) -> None:
    """Check the raw data at --raw (downloading it from --url first if it is missing) and record the check.

    With --content-sha256 any (your own data) nothing is ever downloaded: a missing --raw is an error.
    """
    from unetpp.data.content import ANY, Content
    from unetpp.data.fetch import fetch as run_fetch

    if content_sha256 != ANY and (images is None or masks is None):
        missing = " and ".join(name for name, value in (("--images", images), ("--masks", masks)) if value is None)
        raise click.UsageError(
            f"{missing} needed with a --content-sha256 digest (the counts of that release, e.g. --images 670 "
            "--masks 29461 for stage1_train); with --content-sha256 any they are not checked."
        )

    expected = None if content_sha256 == ANY else Content(content_sha256, images=images, masks=masks)
    record = run_fetch(raw, url, expected, out, timeout=timeout)
    how = f"downloaded from {record.url}" if record.origin == "downloaded" else "already there, used as it is"
    accepted = "any release accepted" if expected is None else "the expected release"
    click.echo(
        f"{record.raw}: {how}; {record.images} images, {record.masks} masks, content digest "
        f"{record.content_sha256} ({accepted}); wrote {out}"
    )
