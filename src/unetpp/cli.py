"""The `unetpp` command line: one sub-command per pipeline stage.

Sub-commands are imported only when they run, so `unetpp --help` stays fast
(it never imports torch) and a broken optional dependency of one stage does
not break the others. This is also where the library's `UnetppError`s become
click's `Error: <message>` with exit status 1 and no traceback.
"""

from __future__ import annotations

import importlib

import click

from unetpp.errors import UnetppError

# name -> (module path, attribute, one-line description shown by `unetpp --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check-params": ("unetpp.commands.check_params", "check_params", "Check params.yaml against the workflow's schema (DVC's first stage)."),
    "synth": ("unetpp.commands.synth", "synth", "Write a small synthetic dataset in the Kaggle stage1_train layout."),
    "fetch": ("unetpp.commands.fetch", "fetch", "Download stage1_train when it is missing; check it is the expected release."),
    "ingest": ("unetpp.commands.ingest", "ingest", "Read raw stage1_train (zip or folder) into one native-size HDF5."),
    "preprocess": ("unetpp.commands.preprocess", "preprocess", "Resize images and masks to a square size (96x96 by default)."),
    "split": ("unetpp.commands.split", "split", "Make a seeded, deterministic train/val(/test) split of the image ids."),
    "train": ("unetpp.commands.train", "train", "Train one architecture; keep the best checkpoint by val IoU."),
    "progress": ("unetpp.commands.progress", "progress", "Export unfinished trainings' history so far from their checkpoints."),
    "predict": ("unetpp.commands.predict", "predict", "Predict probabilities for a split subset; draw a sample figure."),
    "predict-images": ("unetpp.commands.predict_images", "predict_images", "Write PNG masks for new images of any size."),
    "predict-test": ("unetpp.commands.predict_test", "predict_test", "Nuclei and a Kaggle submission.csv for a test set; score it where truth exists."),
    "evaluate": ("unetpp.commands.evaluate", "evaluate", "Score predictions: IoU (per_image, pooled, batch_pooled) and Dice."),
    "aggregate": ("unetpp.commands.aggregate", "aggregate", "Collect a variant's archs and seeds: metrics.json, summary.md, curves.png, headline.json."),
    "compare-variants": ("unetpp.commands.compare_variants", "compare_variants", "Set the protocol variants' aggregates side by side (variants.md, .json, .html)."),
    "bench-train": ("unetpp.commands.bench_train", "bench_train", "Benchmark training steps and inference: reference vs default path."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use and whose errors reach the user as messages."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the sub-command; a `UnetppError` (from parsing or running it) becomes a clean CLI error."""
        try:
            return super().invoke(ctx)
        except UnetppError as error:
            raise click.ClickException(error.message) from error

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        module = importlib.import_module(module_name)
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unetpp")
def main() -> None:
    """U-Net vs UNet++ on the 2018 Data Science Bowl nuclei set.

    The stages, in pipeline order: check-params, synth (optional demo data),
    fetch, ingest, preprocess, split, train, predict, evaluate, aggregate,
    compare-variants, and predict-test for the test sets. Every value is a
    command-line option; the workflow files (Snakefile, dvc.yaml) pass them
    from params.yaml. Run `unetpp COMMAND --help` for the options of one stage.
    """
