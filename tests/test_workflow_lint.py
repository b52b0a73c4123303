"""`snakemake --lint` and `snakefmt --check` are clean: the CI check of the workflow files.

Both run on a copy of the workflow files (so lint's .snakemake/ never lands in the
checkout), with the executables beside the running Python, not from PATH.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_helpers import BIN, SNAKEMAKE, copy_workflow, run

SNAKEFMT = BIN / "snakefmt"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "project")


def lint(project: Path) -> tuple[int, str]:
    result = run([SNAKEMAKE, "--lint"], cwd=project, check=False)
    return result.returncode, result.stdout + result.stderr


def test_snakemake_lint_is_clean(project: Path) -> None:
    code, output = lint(project)
    assert code == 0, output
    assert "Congratulations, your workflow is in a good condition!" in output


def test_snakemake_lint_catches_config_in_shell(project: Path) -> None:
    # The check can fail: a value taken from config inside shell: bypasses params: (no rerun on change).
    rule = project / "workflow/rules/train.smk"
    source = rule.read_text()
    assert "{params.lr}" in source
    rule.write_text(source.replace("{params.lr}", "{config[train][lr]}"))
    code, output = lint(project)
    assert code != 0
    assert "Shell command directly uses variable config" in output


def test_snakefmt_check_is_clean(project: Path) -> None:
    result = run([SNAKEFMT, "--check", "Snakefile", "workflow"], cwd=project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_check_catches_bad_formatting(project: Path) -> None:
    rule = project / "workflow/rules/split.smk"
    rule.write_text(rule.read_text().replace("    input:\n", "    input:  \n\n", 1))
    result = run([SNAKEFMT, "--check", "Snakefile", "workflow"], cwd=project, check=False)
    assert result.returncode != 0
