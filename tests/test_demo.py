"""The README's demo: the whole pipeline on synthetic data in .test/, touching nothing real.

A git clone of the project (the workflow files, .test/ and .gitignore committed) runs
the README's one demo command; afterwards `git status` is clean and the project's own
results/, models/, data/ and dvc.lock were never written.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workflow_helpers import GIT, REPO, copy_workflow, git, missing_stage_commands, tool_env

pytestmark = pytest.mark.slow


def demo_command() -> str:
    """The README's demo line (the one that runs `snakemake --directory .test`)."""
    readme = (REPO / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if re.match(r"^unetpp synth .*snakemake --directory \.test", line)]
    return line


def test_demo_params_have_every_key_of_params_yaml() -> None:
    def keys(mapping: dict, prefix: str = "") -> set[str]:
        found = set()
        for key, value in mapping.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= keys(value, f"{prefix}{key}.")
        return found

    real = yaml.safe_load((REPO / "params.yaml").read_text())
    demo = yaml.safe_load((REPO / ".test/params.yaml").read_text())
    assert keys(demo) == keys(real)
    assert demo["data"]["content_sha256"] == "any" and demo["train"]["epochs"] == 2


def test_the_demo_runs_in_its_own_folder_and_leaves_git_clean(tmp_path: Path) -> None:
    if missing_stage_commands() or GIT is None:
        pytest.skip("needs every stage command and git")
    project = copy_workflow(tmp_path / "project")
    for name in (".gitignore", ".test/params.yaml", ".test/.gitignore", "README.md", "dvc.lock"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, project / name)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "a clone")
    lock = (project / "dvc.lock").read_text()
    result = subprocess.run(["bash", "-c", demo_command()], cwd=project, env=tool_env(), capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Results (in {project / '.test'}): results/variants.md" in result.stderr
    summary = project / ".test/results/variants/reference"
    assert (summary / "summary.md").is_file() and (summary / "curves.png").is_file()
    assert "| reference | 32 | U-Net |" in (project / ".test/results/variants.md").read_text()
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    for name in ("results", "models", "data", "logs", ".snakemake"):
        assert not (project / name).exists(), name
    assert (project / "dvc.lock").read_text() == lock
