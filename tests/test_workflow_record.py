"""workflow/rules/record.smk, the onsuccess hook: DVC's own reason when `dvc commit -f` fails; where results are."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from workflow_helpers import REPO


def hook_functions() -> dict:
    """record.smk holds plain Python (no rules): its functions, as the Snakefile gets them."""
    namespace: dict = {}
    exec(compile((REPO / "workflow/rules/record.smk").read_text(), "record.smk", "exec"), namespace)
    return namespace


def fake_workflow(*rules: str, basedir: Path = REPO) -> SimpleNamespace:
    jobs = [SimpleNamespace(rule=SimpleNamespace(name=name), wildcards={}) for name in rules]
    return SimpleNamespace(
        dag_settings=SimpleNamespace(until=None, omit_from=None),
        config={"test": {"sets": []}},
        dag=SimpleNamespace(jobs=jobs),
        basedir=str(basedir),
    )


def test_a_failed_dvc_commit_shows_dvcs_own_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()  # a .dvc/ but no dvc.yaml: DVC refuses the commit and says why
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    hook = hook_functions()
    hook["record_in_dvc"](fake_workflow("fetch"), "logs/dvc_commit.log", None)
    log = (tmp_path / "logs/dvc_commit.log").read_text()
    assert "dvc commit -f fetch failed (exit " in log and "DVC said:\n" in log
    reason = log.split("DVC said:\n", 1)[1].strip()
    assert reason and reason != "(nothing)", log
    assert "is not a git repository" in reason, reason  # what DVC found wrong (a --quiet commit printed nothing)
    assert reason in capsys.readouterr().err


def test_a_finished_run_says_where_the_results_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    hook = hook_functions()
    monkeypatch.chdir(REPO)
    hook["where_results_are"](fake_workflow("train", "aggregate"))
    said = capsys.readouterr().err
    assert "Results: results/summary.md" in said and "report: snakemake --report report.html" in said
    # Under `snakemake --directory .test` (the demo) it names the folder too.
    monkeypatch.chdir(tmp_path)
    hook["where_results_are"](fake_workflow("aggregate"))
    said = capsys.readouterr().err
    assert f"Results (in {os.getcwd()}): results/summary.md" in said
    assert f"report: snakemake --directory {os.getcwd()} --report report.html" in said
    # A partial run that built no results says nothing about them.
    hook["where_results_are"](fake_workflow("fetch", "ingest"))
    assert capsys.readouterr().err == ""
