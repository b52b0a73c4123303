"""`unetpp progress`: the history so far of trainings that have not finished (from their checkpoints)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".checkpoints"),
              envvar="UNETPP_CHECKPOINT_DIR", show_envvar=True, show_default=True,
              help="The root folder `unetpp train --checkpoint-dir` wrote to.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write <run>/history.csv and <run>/status.json into (e.g. docs/results/cpu_run).")
def progress(checkpoint_dir: Path, out: Path) -> None:
    """Export each unfinished training's history and status (best epoch so far, epochs without gain, layout,
    code commits) from its resume checkpoint, so that a long run's progress can be committed and read.
    Reading never disturbs a running training."""
    from unetpp.training.progress import export_progress

    for folder in export_progress(checkpoint_dir, out):
        click.echo(str(folder))
