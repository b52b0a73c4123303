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


def fake_workflow(*rules: str, basedir: Path = REPO, variants: tuple[str, ...] = ("reference",)) -> SimpleNamespace:
    """A workflow whose DAG holds one job per rule name; aggregate one per variant (its `variant` wildcard)."""
    jobs = [
        SimpleNamespace(rule=SimpleNamespace(name=name), wildcards={"variant": variant} if name == "aggregate" else {})
        for name in rules
        for variant in (variants if name == "aggregate" else (None,))
    ]
    return SimpleNamespace(
        dag_settings=SimpleNamespace(until=None, omit_from=None),
        # As params.yaml gives it (run_variants: the variants' mappings; test.sets: none).
        config={"test": {"sets": []}, "run_variants": [{"name": name} for name in variants]},
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
    workflow = fake_workflow("train", "aggregate", "compare_variants", variants=("reference", "augment"))
    hook["where_results_are"](workflow)
    said = capsys.readouterr().err
    assert said.startswith("Results: results/variants.md (the variants side by side); "), said
    per_variant = "per variant (reference, augment): results/variants/<variant>/ (summary.md, metrics.json, curves.png)"
    assert per_variant in said, said
    assert "results/<variant>/runs/<arch>/seed<seed>/" in said and "report: snakemake --report report.html" in said
    assert "test sets" not in said  # no predict_test job in this run
    for path in ("results/variants.md", "results/variants/reference/summary.md",
                 "results/variants/reference/metrics.json", "results/variants/reference/curves.png",
                 "results/reference/runs/unet/seed0"):
        assert (REPO / path).exists(), path  # the named places are where the committed results are
    # Under `snakemake --directory .test` (the demo) it names the folder too. A run that built one variant's
    # aggregate but not the variant table names only that variant's folders, and the test sets where it ran them.
    monkeypatch.chdir(tmp_path)
    hook["where_results_are"](fake_workflow("aggregate", "predict_test"))
    said = capsys.readouterr().err
    assert said.startswith(f"Results (in {os.getcwd()}): per variant (reference): results/variants/<variant>/"), said
    assert "results/variants.md" not in said and "test sets in results/<variant>/<set>/<arch>/seed<seed>/" in said
    assert f"report: snakemake --directory {os.getcwd()} --report report.html" in said
    # A partial run that built no results says nothing about them.
    hook["where_results_are"](fake_workflow("fetch", "ingest"))
    assert capsys.readouterr().err == ""
