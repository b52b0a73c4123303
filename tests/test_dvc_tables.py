"""The DVC tables docs/pipeline.md gives fit 120 columns (issue 26): three archs, six seeds, an experiment."""

from __future__ import annotations

import re
import shlex

import pytest

from test_aggregate import ARCHS, write_arch
from workflow_helpers import (
    BIN, DVC, GITIGNORE, REPO, copy_workflow, dvc_stages, git, read_params, run, write_params
)

pytestmark = pytest.mark.slow
WIDTH = 120


def documented_commands() -> list[tuple[str, str]]:
    """(folder, command) of the `dvc metrics show|diff` and `dvc exp show` lines of docs/pipeline.md's DVC
    section; a line may be `(cd FOLDER && dvc ...)`."""
    text = (REPO / "docs" / "pipeline.md").read_text()
    section = text.split("## DVC: reproduce, experiment, compare")[1].split("\n## ")[0]
    lines = [re.sub(r"\s+#.*$", "", line) for line in section.splitlines()]
    found = []
    for line in lines:
        if line.startswith("(") and line.endswith(")"):  # `(cd FOLDER && dvc ...)`: a subshell
            line = line[1:-1]
        match = re.match(r"(?:cd (\S+) && )?(dvc (?:metrics (?:show|diff)|exp show)\b.*)", line)
        if match:
            found.append((match.group(1) or ".", match.group(2)))
    return found


def aggregate(project, fake, *seeds: int) -> None:
    args = [BIN / "unetpp", "aggregate", "--models-dir", fake / "models", "--results-dir", fake / "results"]
    for arch in ARCHS:
        args += ["--arch", arch]
    for seed in seeds:
        args += ["--seed", str(seed)]
    run([*args, "--content-sha256", "any", "--out", "results/variants/reference"], cwd=project)


def test_documented_dvc_tables_fit_120_columns(tmp_path):
    project = copy_workflow(tmp_path / "project")
    (project / ".gitignore").write_text(GITIGNORE + "/fake/\n")
    fake = tmp_path / "fake"
    for seed in range(6):
        for k, arch in zip((0, -1, -2), ARCHS):  # UNet++ below U-Net: negative differences, the widest cells
            write_arch(fake, arch, k, seed=seed)
    git(project, "init", "-q", "-b", "main")
    aggregate(project, fake, 0)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "one seed")
    git(project, "checkout", "-q", "-b", "other-branch")
    aggregate(project, fake, *range(6))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "six seeds")
    git(project, "checkout", "-q", "main")
    # An experiment beside main, with another learning rate and six seeds (saved, not run: `dvc exp save`
    # needs every file of every stage, so the others are empty stand-ins).
    aggregate(project, fake, *range(6))
    for stage in dvc_stages(project):
        for out in stage.outputs | stage.inputs:
            path = project / out
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
    params = read_params(project)
    params["variants"]["reference"]["lr"] = 0.001
    write_params(project, params)
    run([DVC, "exp", "save", "-n", "lr-0.001-six-seeds", "--force"], cwd=project)

    commands = documented_commands()
    assert [c.split()[:3] for _, c in commands] == [
        ["dvc", "metrics", "show"], ["dvc", "metrics", "diff"], ["dvc", "exp", "show"], ["dvc", "exp", "show"]
    ]
    outputs = {}
    for folder, command in commands:
        result = run([DVC, *shlex.split(command)[1:]], cwd=project / folder)
        lines = result.stdout.splitlines()
        assert lines and max(map(len, lines)) <= WIDTH, f"{command}\n{result.stdout}"
        outputs[command] = result.stdout
    rows, diff, iou, differences = outputs.values()
    # One row per arch with the same columns; every figure of both commits; the experiment's figures.
    assert rows.splitlines()[0].split() == [
        "Path", "ci_high", "ci_low", "diff", "iou_batch", "iou_image", "sd_batch", "sd_image"
    ]
    assert [line.split()[0] for line in rows.splitlines()[1:]] == [
        f"headline/{arch}.json" for arch in sorted(ARCHS)
    ]
    assert "nested_unet_ds.ci_low" in diff and "unet.sd_image" in diff
    assert "lr-0.001-six-seeds" in iou and "variants.reference.lr" not in iou and "nested_unet_ds.iou_batch" in iou
    assert "iou_image" not in iou and ".diff" not in iou
    assert "nested_unet.diff" in differences and "nested_unet_ds.diff" in differences and "iou" not in differences
