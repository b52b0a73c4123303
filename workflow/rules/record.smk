"""Keep dvc.lock in step with what Snakemake just built (one record, two tools).

Snakemake remembers its runs in .snakemake/, DVC in dvc.lock. After a
successful run every job of the DAG is up to date, so the matching DVC stages
(`rule`; `rule@variant<i>-arch-seed` for the per-run ones; `predict_test@set<i>-variant<i>-arch-seed`
for the test sets; `preprocess@<size>`, `aggregate@variant<i>`) are committed with `dvc commit -f`; `dvc status` is then
clean and `dvc metrics diff` compares branches. Never run snakemake and dvc at the same time: they share no lock.
"""

import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path


def dvc_stage_name(job, test_sets: list[str] = (), variants: list[str] = ()) -> str:
    """The dvc.yaml stage of a Snakemake job: `train@variant0-unet-0` for the matrix stages.

    DVC names a matrix item that is a mapping by its index in the list: a variant
    ({name, size, ...} of run_variants) `variant<i>`, a test set ({name, raw} of
    test.sets) `set<i>`, so a test set's stages are `predict_test@set0-variant0-unet-0`;
    preprocess is a matrix over preprocess.sizes (`preprocess@96`).
    """
    keys = [job.wildcards.get(name) for name in ("size", "arch", "seed")]
    variant = job.wildcards.get("variant")
    if variant is not None:
        keys.insert(0, f"variant{list(variants).index(variant)}")
    test_set = job.wildcards.get("set")
    if test_set is not None:
        keys.insert(0, f"set{list(test_sets).index(test_set)}")
    item = "-".join(str(key) for key in keys if key is not None)
    return f"{job.rule.name}@{item}" if item else job.rule.name


def find_dvc() -> str | None:
    """dvc from PATH, else the one installed beside the Python running Snakemake."""
    beside = Path(sys.executable).parent / "dvc"
    return shutil.which("dvc") or (str(beside) if beside.exists() else None)


def flat_values(mapping: dict, prefix: str = "") -> dict:
    """{"train.lr": 0.0003, ...}: nested dicts as dotted keys, anything else (lists too) as a leaf."""
    flat = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_values(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def config_departures(run_config: dict, params_file: str = "params.yaml") -> list[str]:
    """`key (this run: X, params.yaml: Y)` for every value this run took from --config/--configfile instead."""
    import yaml

    def as_yaml(value):
        # --config hands nested values over as strings ('0.002'): read them as params.yaml's would be.
        return yaml.safe_load(value) if isinstance(value, str) else value

    ours = {key: as_yaml(value) for key, value in flat_values(run_config).items()}
    theirs = flat_values(yaml.safe_load(Path(params_file).read_text()) or {})
    missing = "(absent)"
    return [
        f"{key} (this run: {ours.get(key, missing)!r}, params.yaml: {theirs.get(key, missing)!r})"
        for key in sorted(ours.keys() | theirs.keys())
        if ours.get(key, missing) != theirs.get(key, missing)
    ]


def record_in_dvc(workflow, logfile: str, run_config: dict | None = None) -> None:
    """Run `dvc commit -f` on the stages of this run's DAG; append what happened to `logfile`.

    A run whose config departs from params.yaml (`--config`, `--configfile`) is
    not committed: dvc.lock would credit its outputs to params.yaml's values.
    """
    log = Path(logfile)
    log.parent.mkdir(parents=True, exist_ok=True)

    def note(message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with log.open("a") as handle:
            handle.write(f"{stamp} {message}\n")
        print(f"dvc record: {message}", file=sys.stderr)

    if not Path(".dvc").is_dir():
        note("no .dvc/ here; dvc.lock not updated")
        return
    departures = config_departures(run_config) if run_config is not None else []
    if departures:
        note(
            "this run's config differs from params.yaml in "
            + "; ".join(departures)
            + ": dvc.lock not updated, "
            "since DVC would credit these outputs to params.yaml's values. Put the values in params.yaml and run "
            "`snakemake` again (or `dvc repro`) to record them"
        )
        return
    settings = workflow.dag_settings
    if settings.until or settings.omit_from:
        note(
            "--until/--omit-from leave jobs unchecked; dvc.lock not updated "
            "(run `dvc commit -f STAGE` for the stages you know are current)"
        )
        return
    test_sets = [test_set["name"] for test_set in workflow.config["test"]["sets"]]
    variants = [variant["name"] for variant in workflow.config["run_variants"]]
    # In pipeline order: committing a stage can make DVC write a .gitignore beside its cached output
    # (results/<variant>/runs/...), inside the folders aggregate depends on, so the folder deps are hashed last.
    order = [
        "check_params",
        "fetch",
        "ingest",
        "preprocess",
        "split",
        "train",
        "predict",
        "evaluate",
        "predict_test",
        "aggregate",
        "compare_variants",
    ]
    stages = sorted(
        {
            dvc_stage_name(job, test_sets, variants)
            for job in workflow.dag.jobs
            if job.rule.name != "all"
        },
        key=lambda name: (
            (
                order.index(name.split("@")[0])
                if name.split("@")[0] in order
                else len(order)
            ),
            name,
        ),
    )
    if not stages:
        note("no jobs in this run; dvc.lock not updated")
        return
    dvc = find_dvc()
    if dvc is None:
        note("dvc not found on PATH; dvc.lock not updated")
        return
    # Not --quiet: that hides DVC's own reason when the commit fails.
    result = subprocess.run(
        [dvc, "commit", "--force", *stages],
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        note(f"dvc commit -f {' '.join(stages)}: done")
    else:
        said = "\n".join(
            part.strip() for part in (result.stderr, result.stdout) if part.strip()
        )
        note(
            f"dvc commit -f {' '.join(stages)} failed (exit {result.returncode}); dvc.lock is stale, "
            f"fix the cause and run `dvc commit -f`. DVC said:\n{said or '(nothing)'}"
        )


def where_results_are(workflow) -> None:
    """After a successful run: where the results are, and how to see them.

    Names only what this run's DAG built: the variant table where compare_variants
    was in it, the folders of the variants whose aggregate was, the test sets' folders.
    """
    names = {job.rule.name for job in workflow.dag.jobs}
    if not names & {"aggregate", "compare_variants"}:
        return
    # The variants of this DAG's aggregates (in run_variants' order), else those of run_variants.
    declared = [variant["name"] for variant in workflow.config.get("run_variants", [])]
    built = {
        job.wildcards.get("variant")
        for job in workflow.dag.jobs
        if job.rule.name == "aggregate" and job.wildcards.get("variant")
    }
    variants = [name for name in declared if name in built] + sorted(
        built - set(declared)
    )
    variants = variants or declared
    here = Path.cwd()
    elsewhere = here != Path(
        workflow.basedir
    )  # `snakemake --directory DIR` (the demo: .test)
    shown = f" (in {here})" if elsewhere else ""
    how = (
        f"snakemake --directory {here} --report report.html"
        if elsewhere
        else "snakemake --report report.html"
    )
    parts = []
    if "compare_variants" in names:
        parts.append("results/variants.md (the variants side by side)")
    parts.append(
        "per variant"
        + (f" ({', '.join(variants)})" if variants else "")
        + ": results/variants/<variant>/ (summary.md, metrics.json, curves.png), "
        "its runs in results/<variant>/runs/<arch>/seed<seed>/"
    )
    if "predict_test" in names:
        parts.append("test sets in results/<variant>/<set>/<arch>/seed<seed>/")
    print(f"Results{shown}: {'; '.join(parts)}; report: {how}", file=sys.stderr)
